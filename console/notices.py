"""Redis pub/sub notices for the console's live pages: one subscription per console process,
fanned out to every open wallboard and desk (not one Redis connection per browser).

A notice only says *that* something changed (the seat of ``agent1001``, waiting callers, the
counts); pages then read the state itself. So a notice lost while Redis was away costs
nothing but a refresh: after every (re)subscription each listener gets :data:`EVERYTHING`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Callable, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace

log = logging.getLogger(__name__)

CHANNELS = (keyspace.SEATS_CHANGED, keyspace.LIVE_CHANGED, keyspace.DESK_CHANGED, keyspace.CONSOLE_USERS_CHANGED)
EVERYTHING = ("*", "*")  # (channel, data) that matches every listener: re-read it all
BACKLOG = 256  # notices a listener may hold; beyond that it is told to re-read everything
READY_WAIT = 2.0  # s a new listener waits for the first subscription before it reads anyway
# s one read of a quiet channel lasts: a notice ends it at once, so a longer read costs no
# latency, and every idle wake-up costs an engine CPU (it was 1 s: one wake-up a second per engine)
QUIET_READ = 5.0

Notice = tuple[str, str]  # (channel, data)
T = TypeVar("T")


class Stopping(Exception):
    """The console is shutting down: event streams end (browsers reconnect to the next one)."""


class Notices:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis
        self._listeners: set[asyncio.Queue[Notice]] = set()
        self._ready = asyncio.Event()
        self.stopping = asyncio.Event()  # set at the console's shutdown: every event stream ends
        self.on_user_changed: Callable[[str], None] = lambda name: None  # console/streams.py: end its streams

    async def run(self) -> None:
        me = asyncio.current_task()
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(*CHANNELS)
                    self._ready.set()
                    self._tell(EVERYTHING)  # whatever happened while not subscribed
                    while True:  # (a read with a timeout of its own: the client's socket timeout does not apply)
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=QUIET_READ)
                        if me is not None and me.cancelling():
                            # redis-py's read timeout can swallow a cancellation that lands as it
                            # expires: without this the console's shutdown waits here forever
                            raise asyncio.CancelledError
                        if message is None or message.get("type") != "message":
                            continue
                        if message["channel"] == keyspace.CONSOLE_USERS_CHANGED:  # not a page's business
                            self.on_user_changed(str(message["data"]))
                        else:
                            self._tell((str(message["channel"]), str(message["data"])))
            except (RedisError, OSError) as exc:
                log.warning("console: Redis notices unavailable (%s); retrying", exc)
                await asyncio.sleep(1)

    def _tell(self, notice: Notice) -> None:
        for queue in self._listeners:
            if queue.full():  # far behind: one "re-read everything" replaces its backlog
                while not queue.empty():
                    queue.get_nowait()
                notice_now = EVERYTHING
            else:
                notice_now = notice
            queue.put_nowait(notice_now)

    @contextlib.asynccontextmanager
    async def listener(self) -> AsyncIterator["asyncio.Queue[Notice]"]:
        """Notices from now on; enter it *before* reading the state, so nothing falls between."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=BACKLOG)
        self._listeners.add(queue)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), READY_WAIT)
            yield queue
        finally:
            self._listeners.discard(queue)


async def next_item(queue: "asyncio.Queue[T]", stopping: asyncio.Event, timeout: float) -> T | None:
    """The queue's next item, None after ``timeout`` s; :class:`Stopping` once ``stopping`` is set
    (an open event stream must not hold up the server's shutdown)."""
    if stopping.is_set():
        raise Stopping()
    getter, stopper = asyncio.ensure_future(queue.get()), asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait((getter, stopper), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    if getter in done:
        return getter.result()
    if stopper in done:
        raise Stopping()
    return None
