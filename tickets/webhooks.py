"""The push worker: ticket events from the Redis stream to department webhooks, signed.

Every endpoint in ``tickets.webhooks`` has its own consumer group on
:data:`ivr.store.keyspace.TICKET_EVENTS`, so each endpoint sees every event while the engines
sharing one Redis split the work: within a group, an entry goes to one worker. The rules (who
gets what, the body, the signature, the backoff) are :mod:`tickets.push`; this module does the
Redis and HTTP work around them.

Delivery, per endpoint and event (one at a time per endpoint and worker, in stream order):

1. The entry is read (``XREADGROUP``) or taken over from a worker that stopped answering: an
   entry pending longer than ``claim_idle`` seconds is claimed (``XAUTOCLAIM``, scanned every
   ``claim_idle / 2``). A worker holding an entry renews its claim before every retry and
   while it waits for one, checking it still owns it, so a live worker is not overtaken; a
   POST never outlasts ``claim_idle`` (the endpoint's ``timeout`` must be shorter).
2. An event the endpoint does not want (its filters) is acknowledged; one already in
   ``push_done`` is acknowledged without a POST.
3. A 2xx marks the event done and acknowledges the entry in one MULTI/EXEC; a connection
   error, a timeout or any other status counts a failed try (``push_tries``, shared by the
   workers) and waits the backoff; after ``max_tries`` the event is parked in ``push_dead``
   with the last error, and acknowledged.

Never twice to one endpoint: an acknowledged entry is never read again by its group (across
restarts too: the group lives in Redis), and a taken-over or duplicated entry whose event is
done is skipped. The one window left: a worker that dies (SIGKILL, power) after the receiver
answered 2xx and before the done mark reached Redis; its entry is taken over and posted again
with the same ``X-Ivr-Event-Id``, which receivers should dedupe on. While Redis is unreachable
after a 2xx, the worker keeps retrying the done mark rather than letting the entry go.

Stopping (:meth:`PushWorker.stop`): nothing new is read; a POST in flight gets ``grace``
seconds to finish and be recorded; an event waiting for a retry is handed back at once (its
pending entry marked long idle, so the next worker claims it without waiting ``claim_idle``).

Groups are created at id 0: events already in the stream when push first starts are
delivered, and an endpoint added later gets every event still in the stream (the stream keeps
the retention's worth, see ``ivr.store``) — departments asked to be connected get the backlog
rather than only what happens next. Done marks, try counts and dead letters expire with the
retention (``tickets.retention_days``); dead letters name the ticket but hold no caller number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Mapping, TypeVar, cast

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ivr.store import RedisTarget, confirm, keyspace, redis_client
from ivr.store.failover import confirm_replicas
from ivr.config import ConfigError, Settings, Webhook, webhook_secret
from ivr.core.logtext import one_line
from tickets.dead_letters import FORGET, REPLAY_FOR
from tickets.push import (
    MalformedEvent, TicketEvent, backoff_delay, delivered, endpoint_problems, gives_up, payload, signed_headers,
    stable_id, wants,
)

log = logging.getLogger("ivr.push")  # the name log configs and tests filter on, from before the move

T = TypeVar("T")
DAY = 86400
DEAD_LETTERS_KEPT = 10_000  # per endpoint: a receiver gone for months must not fill Redis
HANDED_BACK_IDLE_MS = DAY * 1000  # an entry handed back on stop looks this idle: claimed at once
REDIS_RETRY = 0.5  # s between attempts while Redis does not answer
REFUSED_RETRY = 5.0  # s between attempts while Redis refuses (a key of the wrong type, out of memory)
USER_AGENT = "ivr12345-push"
RECEIVER_TEXT = 200  # characters of a receiver's answer kept (log, dead letter), escaped

# Renew (or hand back) a claim, only while it is ours: KEYS[1] the stream; ARGV group,
# consumer, entry id, the idle time to set (0 renews). 1 if it was ours, 0 if another worker
# took it over (then this worker lets it go).
CLAIM_IF_MINE = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""


@dataclass
class _Endpoint:
    """One webhook as the worker drives it: its keys, and where its takeover scan is."""

    name: str
    webhook: Webhook
    key: bytes
    group: str
    done: str
    tries: str
    dead: str
    has_group: bool = False
    scan_cursor: str = "0-0"
    next_scan: float = 0.0


class PushWorker:
    """Delivers ticket events to every configured webhook until :meth:`stop`.

    ``redis``: a URL or the ``redis:`` settings (the worker opens and closes its own client) or a client that decodes
    responses and whose socket timeout exceeds ``poll``. ``consumer``: this worker's name in
    the groups, unique per engine process (``host:port:pid``). ``claim_idle``: seconds after
    which a silent worker's pending event is taken over. ``forget_after``: consumers holding
    nothing and silent this long (dead engines) are removed from the groups.
    ConfigError when an endpoint has no key or a filter names no ticket event.
    """

    def __init__(self, redis: RedisTarget | aioredis.Redis, settings: Settings, consumer: str, *, claim_idle: float = 60.0,
                 poll: float = 1.0, forget_after: float = 3600.0, environ: Mapping[str, str] | None = None):
        webhooks = settings.tickets.webhooks
        secrets = {name: webhook_secret(name, environ) for name in webhooks}
        problems = endpoint_problems(webhooks, secrets)
        problems += [f"webhook {name!r}: timeout {w.timeout} s must be below the claim idle time {claim_idle} s"
                     for name, w in webhooks.items() if w.timeout >= claim_idle]
        if problems:
            raise ConfigError("\n".join(problems))
        self._confirm = confirm_replicas(settings.redis if isinstance(redis, aioredis.Redis) else redis)
        if not isinstance(redis, aioredis.Redis):
            self.redis = redis_client(redis, 2 * len(webhooks) + 4, poll + 5.0, connect_timeout=5.0)
            self._owns_redis = True
        else:
            if not redis.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("the push worker needs a Redis client with decode_responses=True")
            self.redis, self._owns_redis = redis, False
        self.push = settings.tickets.push
        self.retention_s = settings.tickets.retention_days * DAY
        self.consumer = consumer
        self.claim_idle = claim_idle
        self.poll = poll
        self.forget_after = forget_after
        self.endpoints = [
            _Endpoint(name, w, (secrets[name] or "").encode(), keyspace.push_group(name), keyspace.push_done(name),
                      keyspace.push_tries(name), keyspace.push_dead(name))
            for name, w in webhooks.items()
        ]
        self._claim_if_mine = self.redis.register_script(CLAIM_IF_MINE)
        self._forget = self.redis.register_script(FORGET)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._finished = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until :meth:`stop`; one task per endpoint, one HTTP session for all."""
        if self._running:
            raise RuntimeError("PushWorker.run() is already running")
        self._running = True
        try:
            if self._stopping.is_set():
                return  # stopped before it began
            async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
                async with asyncio.TaskGroup() as group:
                    self._tasks = [group.create_task(self._serve(ep, session), name=f"push {ep.name}")
                                   for ep in self.endpoints]
        finally:
            self._finished.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop reading; POSTs in flight get ``grace`` seconds to finish and be recorded, then
        are cut (their events are taken over after ``claim_idle``). Closes a client we opened."""
        self._stopping.set()
        if self._running:
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                _finished, late = await asyncio.wait(pending, timeout=grace)
                for task in late:
                    log.warning("%s: still delivering after %.1f s, cut", task.get_name(), grace)
                    task.cancel()
            await self._finished.wait()
        if self._owns_redis:
            await self.redis.aclose()

    # --- one endpoint ----------------------------------------------------------------------

    async def _serve(self, ep: _Endpoint, session: aiohttp.ClientSession) -> None:
        while not self._stopping.is_set():
            try:
                if not ep.has_group:
                    await self._create_group(ep)
                entry = await self._next(ep)
                if entry is not None:
                    await self._deliver(ep, session, *entry)
            except ResponseError as exc:
                if str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    ep.has_group = False  # the stream was deleted (FLUSHALL, a fresh Redis): start over
                    continue
                log.error("push %s: Redis refused a command (%s), retrying", ep.name, exc)  # WRONGTYPE, OOM, …
                await self._stopped_within(REFUSED_RETRY)
            except (RedisError, OSError) as exc:
                log.warning("push %s: Redis unavailable (%s), retrying", ep.name, exc)
                await self._stopped_within(REDIS_RETRY)
        try:
            await self._hand_back(ep)
        except (RedisError, OSError) as exc:
            log.warning("push %s: could not hand back pending events (%s): taken over after %.0f s",
                        ep.name, exc, self.claim_idle)

    async def _create_group(self, ep: _Endpoint) -> None:
        try:
            await self.redis.xgroup_create(keyspace.TICKET_EVENTS, ep.group, id="0", mkstream=True)
            log.info("push %s: consumer group created; delivering every event in the stream", ep.name)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        ep.has_group = True

    async def _next(self, ep: _Endpoint) -> tuple[str, dict[str, str]] | None:
        """The next entry to deliver: one taken over from a silent worker, else a new one."""
        if time.monotonic() >= ep.next_scan:
            claimed = await self._take_over(ep)
            if claimed is not None or ep.scan_cursor != "0-0":
                return claimed
        result = await self._unless_stopping(self.redis.xreadgroup(
            ep.group, self.consumer, {keyspace.TICKET_EVENTS: ">"}, count=1, block=int(self.poll * 1000)))
        return _first_entry(result)

    async def _take_over(self, ep: _Endpoint) -> tuple[str, dict[str, str]] | None:
        reply = await self.redis.xautoclaim(keyspace.TICKET_EVENTS, ep.group, self.consumer,
                                            int(self.claim_idle * 1000), ep.scan_cursor, count=1)
        ep.scan_cursor, entries = reply[0], reply[1]
        for entry_id, fields in entries:
            if fields is not None:
                log.info("push %s: took over %s from a silent worker", ep.name, entry_id)
                return entry_id, fields
        if ep.scan_cursor == "0-0":  # a whole scan without anything to take over: rest a while
            ep.next_scan = time.monotonic() + self.claim_idle / 2
            await self._forget_silent_consumers(ep)
        return None

    async def _forget_silent_consumers(self, ep: _Endpoint) -> None:
        """Engines that died leave their consumer names behind (one per process)."""
        for consumer in await self.redis.xinfo_consumers(keyspace.TICKET_EVENTS, ep.group):
            if (consumer["name"] != self.consumer and int(consumer["pending"]) == 0
                    and int(consumer["idle"]) > self.forget_after * 1000):
                await self.redis.xgroup_delconsumer(keyspace.TICKET_EVENTS, ep.group, consumer["name"])

    async def _deliver(self, ep: _Endpoint, session: aiohttp.ClientSession, entry_id: str,
                       fields: dict[str, str]) -> None:
        try:
            event = TicketEvent.from_fields(fields)
            if not wants(ep.webhook, event) or fields.get(REPLAY_FOR, ep.name) != ep.name:  # another's replay
                await self.redis.xack(keyspace.TICKET_EVENTS, ep.group, entry_id)
                return
            body = payload(event, ep.webhook)
        except MalformedEvent as exc:
            await self._park(ep, entry_id, fields, str(exc), 0)
            return
        # through Sentinel, only what replicas hold goes out: a ticket number a dying master gave
        # and never replicated is not used (the promoted replica may give it to another ticket)
        if not await self._confirmed(entry_id, fields):
            log.warning("push %s: %s is gone after a Redis failover; its ticket's journal writes it again", ep.name,
                        entry_id)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(ep.done, event.event_id)
            pipe.hget(ep.tries, event.event_id)
            done_at, tries = await pipe.execute()
        if done_at is not None:
            log.info("push %s: %s was delivered before, skipped", ep.name, event.event_id)
            await self.redis.xack(keyspace.TICKET_EVENTS, ep.group, entry_id)
            return
        failures = int(tries or 0)
        while True:
            error = await self._post(session, ep, event.event_id, body)
            if error is None:
                await self._record_delivery(ep, entry_id, event.event_id, replayed=REPLAY_FOR in fields)
                return
            failures = await self._record_failure(ep, event.event_id)
            log.warning("push %s: %s try %d/%d failed: %s", ep.name, event.event_id, failures,
                        self.push.max_tries, error)
            if gives_up(failures, self.push):
                await self._park(ep, entry_id, fields, error, failures)
                return
            if not await self._wait_for_retry(ep, entry_id, backoff_delay(failures, self.push)):
                return

    async def _confirmed(self, entry_id: str, fields: dict[str, str]) -> bool:
        """The entry is held by the replicas asked for (NotReplicated if not yet) and is still
        the master's (False: read from a master that died before replicating it)."""
        if self._confirm[0] <= 0:
            return True
        await confirm(self.redis, *self._confirm)
        return cast(list[Any], await self.redis.xrange(keyspace.TICKET_EVENTS, entry_id, entry_id)) == [
            (entry_id, fields)]

    async def _post(self, session: aiohttp.ClientSession, ep: _Endpoint, event_id: str, body: bytes) -> str | None:
        """None once the receiver answered 2xx, else what went wrong."""
        headers = signed_headers(event_id, ep.key, body, int(time.time()))
        timeout = aiohttp.ClientTimeout(total=ep.webhook.timeout)
        try:
            async with session.post(ep.webhook.url, data=body, headers=headers, timeout=timeout,
                                    allow_redirects=False) as response:
                if delivered(response.status):
                    return None
                # the receiver's words, never its line breaks or escapes (log forging)
                raw = b""
                while len(raw) <= 4 * RECEIVER_TEXT and (more := await response.content.read(4 * RECEIVER_TEXT)):
                    raw += more  # enough bytes for RECEIVER_TEXT characters and to tell it was cut
                detail = one_line(raw.decode(errors="replace").strip(), RECEIVER_TEXT)
                return f"HTTP {response.status} {detail}".strip()
        except asyncio.TimeoutError:
            return f"no answer within {ep.webhook.timeout} s"
        except aiohttp.ClientError as exc:
            return one_line(f"{type(exc).__name__}: {exc}", 2 * RECEIVER_TEXT)

    async def _record_delivery(self, ep: _Endpoint, entry_id: str, event_id: str, *, replayed: bool) -> None:
        """Done mark and XACK together (and, for a replay, the dead letter gone); kept trying
        while Redis is away, since letting the entry go would post it again."""
        while True:
            now = time.time()
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zadd(ep.done, {event_id: now})
                    pipe.zremrangebyscore(ep.done, "-inf", f"({now - self.retention_s}")
                    pipe.expire(ep.done, self.retention_s)
                    pipe.hdel(ep.tries, event_id)
                    pipe.xack(keyspace.TICKET_EVENTS, ep.group, entry_id)
                    if replayed:
                        await self._forget(keys=[ep.dead], args=[event_id], client=pipe)
                    await pipe.execute()
                log.info("push %s: %s delivered%s", ep.name, event_id, " (replayed dead letter)" if replayed else "")
                return
            except (RedisError, OSError) as exc:
                log.warning("push %s: %s delivered but not yet recorded (%s), retrying", ep.name, event_id, exc)
                await asyncio.sleep(REDIS_RETRY)

    async def _record_failure(self, ep: _Endpoint, event_id: str) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(ep.tries, event_id, 1)
            pipe.expire(ep.tries, self.retention_s)
            failures, _ = await pipe.execute()
        return int(failures)

    async def _park(self, ep: _Endpoint, entry_id: str, fields: Mapping[str, str], error: str, tries: int) -> None:
        """A dead letter names the event and why it failed; the ticket itself stays in Redis."""
        parked_id = stable_id(fields.get("linkedid", ""), fields.get("event", ""))
        letter = {"entry": entry_id, "id": parked_id, "event": fields.get("event", ""),
                  "number": fields.get("number", ""), "line": fields.get("line", ""),
                  "linkedid": fields.get("linkedid", ""), "tries": tries, "error": error,
                  "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        async with self.redis.pipeline(transaction=True) as pipe:
            if REPLAY_FOR in fields:  # a replay that failed again: its letter is replaced, not doubled
                await self._forget(keys=[ep.dead], args=[parked_id], client=pipe)
            pipe.rpush(ep.dead, json.dumps(letter, ensure_ascii=False))
            pipe.ltrim(ep.dead, -DEAD_LETTERS_KEPT, -1)
            pipe.expire(ep.dead, self.retention_s)
            pipe.hdel(ep.tries, parked_id)
            pipe.xack(keyspace.TICKET_EVENTS, ep.group, entry_id)
            await pipe.execute()
        log.error("push %s: %s parked in %s after %d tries: %s", ep.name, parked_id, ep.dead, tries, error)

    async def _wait_for_retry(self, ep: _Endpoint, entry_id: str, delay: float) -> bool:
        """Wait out the backoff, renewing the claim; False when stopping or the entry is lost."""
        deadline = time.monotonic() + delay
        while True:
            left = deadline - time.monotonic()
            if left > 0 and await self._stopped_within(min(left, self.claim_idle / 3)):
                return False
            if not await self._claim_if_mine(keys=[keyspace.TICKET_EVENTS],
                                             args=[ep.group, self.consumer, entry_id, 0]):
                log.warning("push %s: %s was taken over by another worker", ep.name, entry_id)
                return False
            if left <= 0:
                return True

    async def _hand_back(self, ep: _Endpoint) -> None:
        """On a graceful stop: what this worker still holds is marked long idle, so the next
        worker claims it at once; a consumer that holds nothing leaves the group."""
        if not ep.has_group:
            return
        held = await self.redis.xpending_range(keyspace.TICKET_EVENTS, ep.group, "-", "+", 100, self.consumer)
        for entry in held:
            await self._claim_if_mine(keys=[keyspace.TICKET_EVENTS],
                                      args=[ep.group, self.consumer, entry["message_id"], HANDED_BACK_IDLE_MS])
        if held:
            log.info("push %s: %d pending event(s) handed back", ep.name, len(held))
        else:
            await self.redis.xgroup_delconsumer(keyspace.TICKET_EVENTS, ep.group, self.consumer)

    # --- waiting -------------------------------------------------------------------------

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _unless_stopping(self, operation: Awaitable[T]) -> T | None:
        """``operation``'s result, or None if a stop came first (the operation is cancelled)."""
        work = asyncio.ensure_future(operation)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            return work.result() if work.done() else None
        finally:
            for task in (work, stop):
                task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)


def _first_entry(result: Any) -> tuple[str, dict[str, str]] | None:
    """The one entry of an ``XREADGROUP ... COUNT 1`` reply (RESP2 list or RESP3 dict shape)."""
    if not result:
        return None
    streams = result.values() if isinstance(result, dict) else (entries for _name, entries in result)
    for entries in streams:
        if entries and isinstance(entries[0], list):
            entries = entries[0]  # RESP3: one more level
        for entry_id, fields in entries:
            if fields is not None:
                return entry_id, fields
    return None
