"""Leases in Redis: exactly one engine per Asterisk does each singleton duty (docs/cluster.md).

Every engine keeps its AMI session, but only the holder of a duty's lease acts on it: the
``follow`` lease (call following, tickets, KPI counts, the live wallboard, seat state, queued
callbacks), ``hours`` (the sub-center hours publisher) and ``retention`` (Asterisk's call logs).

A lease is a key holding ``"<token> <engine identity>"`` with a TTL (``PX``). Taking a free lease
draws a fencing token from a counter (``INCR``) that only grows, in the same script as the
``SET … NX PX`` (atomic: no holder without a token). The holder renews it every ``renew_every``
seconds (a script: only while the key still names it); when a renewal fails, or simply does not
succeed before the local deadline (send time + TTL, minus a margin), the engine counts the lease
as lost at once and stops acting, before Redis lets it expire. Another engine takes it within
TTL + ``renew_every`` of the holder's death. The token fences ticket writes
(:mod:`tickets.store`): a holder paused past its TTL that wakes up writes under an older token
than the lease's current one, and Redis refuses those writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace

log = logging.getLogger(__name__)

DUTIES = ("follow", "hours", "retention")
TTL = 3.0  # s: another engine takes the lease this long (at most + RENEW_EVERY) after the holder died
RENEW_EVERY = 1.0  # s
MARGIN = 0.25  # s the holder stops before the TTL it asked for runs out (its clock and Redis' may differ)

# KEYS[1] the lease, KEYS[2] its token counter; ARGV[1] the engine's identity, ARGV[2] the TTL (ms).
# A free lease (or one this engine still holds from before it counted it lost) is taken under a
# new token; one held by another engine is not (0).
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^%d+ (.*)$') ~= ARGV[1] then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return token
"""

# KEYS[1] the lease; ARGV[1] the value it must still hold, ARGV[2] the TTL (ms). 1 renewed, 0 lost.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class LeaseState(NamedTuple):
    """One duty's lease as Redis holds it: holder '' (and ttl 0) when free; token = the last given out."""

    holder: str
    token: int
    ttl: float


class Lease:
    """One duty's lease for one Asterisk, as seen by one engine."""

    def __init__(self, redis: aioredis.Redis, duty: str, asterisk: str, identity: str, *, ttl: float = TTL,
                 renew_every: float = RENEW_EVERY, margin: float = MARGIN):
        self.redis, self.duty, self.asterisk, self.identity = redis, duty, asterisk, identity
        self.key, self.token_key = keyspace.lease(duty, asterisk), keyspace.lease_token(duty, asterisk)
        self.ttl, self.renew_every, self.margin = ttl, renew_every, margin
        self.token = 0  # 0: not held
        self._valid_until = 0.0  # monotonic: when this engine stops counting on the lease
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self.changed = asyncio.Event()  # set at every gain and loss (for waiters)

    @property
    def held(self) -> bool:
        """Held now: taken or renewed less than TTL - margin ago (no Redis round trip)."""
        return self.token > 0 and time.monotonic() < self._valid_until

    def fence(self) -> int:
        """The token a write carries: the current one while held, else 0 (refused once any was given)."""
        return self.token if self.held else 0

    async def acquire(self) -> bool:
        sent = time.monotonic()
        token = int(await self._acquire(keys=[self.key, self.token_key], args=[self.identity, int(self.ttl * 1000)]))
        if token:
            self.token, self._valid_until = token, sent + self.ttl - self.margin
        return bool(token)

    async def renew(self) -> bool:
        sent = time.monotonic()
        ok = bool(await self._renew(keys=[self.key], args=[self._value(), int(self.ttl * 1000)]))
        if ok:
            self._valid_until = sent + self.ttl - self.margin
        return ok

    async def release(self) -> None:
        """Hand the lease over at once (a graceful stop): the next engine need not wait for the TTL."""
        if self.token:
            value, self.token = self._value(), 0
            self.changed.set()
            await self._release(keys=[self.key], args=[value])

    def _value(self) -> str:
        return f"{self.token} {self.identity}"

    async def keep(self, on_gain: Callable[[int], None] = lambda _t: None,
                   on_loss: Callable[[], None] = lambda: None) -> None:
        """Take the lease when it is free and renew it while held, forever; ``on_gain(token)`` and
        ``on_loss()`` run at each change (loss: a failed or late renewal, counted at once)."""
        while True:
            started = time.monotonic()
            was_held = self.token > 0
            try:
                step = self.renew() if was_held else self.acquire()
                ok = await asyncio.wait_for(step, self.renew_every)
            except (RedisError, OSError, TimeoutError) as exc:
                if was_held:
                    log.warning("lease %s: renewal failed (%s)", self.key, exc)
                ok = False
            if was_held and (not ok or not self.held):
                log.warning("lease %s lost (token %d): this engine stops that duty now", self.key, self.token)
                self.token = 0
                self.changed.set()
                on_loss()
            elif not was_held and ok:
                log.info("lease %s taken by %s with token %d", self.key, self.identity, self.token)
                self.changed.set()
                on_gain(self.token)
            await asyncio.sleep(max(0.0, self.renew_every - (time.monotonic() - started)))

    async def while_held(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` only while the lease is held: started at each gain, cancelled at each loss
        (or when the local deadline passes without a renewal); returns when ``work`` does."""
        while True:
            await self._wait_until(lambda: self.held)
            task = asyncio.create_task(work())
            try:
                await self._wait_until(lambda t=task: not self.held or t.done(), task)  # type: ignore[misc]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if task.done() and not task.cancelled():
                task.result()  # its error, if any, goes to the caller (keep_running restarts it)
                return

    async def _wait_until(self, condition: Callable[[], bool], task: asyncio.Task[None] | None = None) -> None:
        """Wait for ``condition``, checked at each gain or loss, when ``task`` ends, and at the
        local deadline (a renewal that never came back)."""
        while not condition():
            self.changed.clear()
            waiter = asyncio.create_task(self.changed.wait())
            waits: set[asyncio.Future[Any]] = {waiter} if task is None else {waiter, task}
            timeout = max(0.05, self._valid_until - time.monotonic()) if self.held else None
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()


async def lease_status(redis: aioredis.Redis, asterisk: str, duties: tuple[str, ...] = DUTIES) -> dict[str, LeaseState]:
    """Each duty's lease for ``asterisk`` as Redis holds it now (for ``ivr reload --status``)."""
    async with redis.pipeline(transaction=False) as pipe:
        for duty in duties:
            pipe.get(keyspace.lease(duty, asterisk))
            pipe.pttl(keyspace.lease(duty, asterisk))
            pipe.get(keyspace.lease_token(duty, asterisk))
        replies = await pipe.execute()
    out: dict[str, LeaseState] = {}
    for i, duty in enumerate(duties):
        value, pttl, last = replies[3 * i:3 * i + 3]
        token, _, holder = (value or "").partition(" ")
        out[duty] = LeaseState(holder, int(token or last or 0), max(0, int(pttl)) / 1000 if value else 0.0)
    return out
