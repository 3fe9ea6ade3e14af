"""Leases in Redis: exactly one engine per Asterisk does each singleton duty (docs/cluster.md).

Every engine keeps its AMI session, but only the holder of a duty's lease acts on it: the
``follow`` lease (call following, tickets, KPI counts, the live wallboard, seat state, queued
callbacks), ``hours`` (the sub-center hours publisher) and ``retention`` (Asterisk's call logs).

A lease is a key holding ``"<token> <engine identity>"`` with a TTL (``PX``). Taking a free lease
draws a fencing token from a counter (``INCR``) that only grows, in the same script as the
``SET … PX`` (atomic: no holder without a token). The holder renews it every ``renew_every``
seconds (a script: only while nobody else took it). Another engine takes it within TTL +
``renew_every`` of the holder's death.

A renewal that Redis answers "no" (another engine holds it, or took it since) loses the lease at
once: the engine stops that duty and forgets what it followed. A renewal that gets no answer
(Redis down or unreachable) leaves the engine *in doubt*: it keeps acting, as it always did during
a Redis outage (tickets wait in the journal), because the token makes that safe: every ticket
write carries it (:mod:`tickets.store`) and Redis refuses a write whose token is older than the
counter, so whatever a holder wrote after another engine took over (a holder that was paused,
partitioned, or slow to notice) is dropped, and the new holder reconciles those calls. When
Redis answers again and nobody took a token since (the counter is not above ours), the lease is
renewed under the same token, so the journal of the outage still lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, NamedTuple, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.core.identity import pid_alive
from ivr.store import keyspace

log = logging.getLogger(__name__)

DUTIES = ("follow", "hours", "retention")
TTL = 3.0  # s: another engine takes the lease this long (at most + RENEW_EVERY) after the holder died
RENEW_EVERY = 1.0  # s

# KEYS[1] the lease, KEYS[2] its token counter; ARGV[1] the engine's identity, ARGV[2] the TTL (ms),
# ARGV[3] a value held by this engine's dead predecessor ('' none). A free lease (or one this
# engine still holds from before it counted it lost, or its predecessor's) is taken under a new
# token; one held by another engine is not (0).
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[3] and string.match(held, '^%d+ (.*)$') ~= ARGV[1] then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return token
"""

# KEYS[1] the lease, KEYS[2] its token counter; ARGV[1] the value it must hold, ARGV[2] the TTL
# (ms), ARGV[3] the holder's token. 1 renewed, 0 lost. A key that expired while the holder could
# not reach Redis is set again if nobody drew a token since; a counter below the token (a Redis
# that lost it) is raised to it, so that tokens never go back.
RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if held then return 0 end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last > tonumber(ARGV[3]) then return 0 end
if last < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
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
                 renew_every: float = RENEW_EVERY, alive: Callable[[int], bool] | None = None,
                 confirm: Callable[[], Coroutine[Any, Any, None]] | None = None):
        """``confirm``: returns once a replica holds what this connection wrote (WAIT; raises
        RedisError if not): a token a master took but a failover could forget is never used."""
        self.redis, self.duty, self.asterisk, self.identity = redis, duty, asterisk, identity
        self.confirm = confirm
        self.alive = alive or pid_alive
        self.key, self.token_key = keyspace.lease(duty, asterisk), keyspace.lease_token(duty, asterisk)
        self.ttl, self.renew_every = ttl, renew_every
        self.token = 0  # 0: not held
        self.in_doubt = False  # the last renewal got no answer from Redis
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self.changed = asyncio.Event()  # set at every gain and loss (for waiters)
        # after Redis did not answer, a non-holder leaves a free lease alone this long: the holder,
        # in doubt meanwhile, renews first (a failover's promoted replica may have lost the key), so
        # a Redis failover does not move the duty (a move drops the old holder's journaled writes)
        self._hold_back_until = 0.0

    @property
    def held(self) -> bool:
        """Held (or in doubt, Redis silent): this engine does the duty."""
        return self.token > 0

    def fence(self) -> int:
        """The token a write carries: the current one while held, else 0 (refused once any was given)."""
        return self.token

    async def acquire(self) -> bool:
        """Take the lease if it is free, or held by this engine's predecessor that died (same host and
        FastAGI port, which this process has bound now, and a pid no longer alive here): an engine
        restarted after a crash follows at once instead of waiting out the dead one's TTL."""
        predecessor = await self._dead_predecessor()
        token = int(await self._acquire(keys=[self.key, self.token_key],
                                        args=[self.identity, int(self.ttl * 1000), predecessor]))
        if token and self.confirm is not None:
            try:
                await self.confirm()
            except RedisError as exc:  # not on a replica yet: a promoted one could give the token again
                log.warning("lease %s: token %d not confirmed by a replica (%s); not acting on it", self.key, token, exc)
                token = 0
        self.token = token
        return bool(token)

    async def _dead_predecessor(self) -> str:
        held = cast(str | None, await self.redis.get(self.key))
        _token, _, holder = (held or "").partition(" ")
        slot, _, pid = holder.rpartition(":")
        mine, _, my_pid = self.identity.rpartition(":")
        if not held or slot != mine or pid == my_pid or not pid.isdigit() or self.alive(int(pid)):
            return ""
        return str(held)

    async def renew(self) -> bool:
        """Renew the lease; False: lost (the token is 0 now). Redis errors are raised (in doubt)."""
        ok = bool(await self._renew(keys=[self.key, self.token_key],
                                    args=[self._value(), int(self.ttl * 1000), self.token]))
        if not ok:
            self.token = 0
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
        ``on_loss()`` run at each change (a loss: Redis said it is not ours, acted on at once)."""
        while True:
            started = time.monotonic()
            token = self.token
            try:
                async with asyncio.timeout(self.renew_every):  # (wait_for of 3.11 may swallow a cancel)
                    if token:
                        await self.renew()
                    elif time.monotonic() >= self._hold_back_until:
                        await self.acquire()
                if self.in_doubt and self.token:
                    log.info("lease %s: Redis answers again, still held with token %d", self.key, self.token)
                self.in_doubt = False
            except (RedisError, OSError, TimeoutError) as exc:
                if token and not self.in_doubt:
                    log.warning("lease %s: renewal got no answer (%s); acting on in doubt, writes fenced by "
                                "token %d", self.key, exc or "timeout", token)
                self.in_doubt = bool(token)
                if not token:
                    self._hold_back_until = time.monotonic() + self.ttl + self.renew_every
            if token and not self.token:
                log.warning("lease %s lost (token %d): this engine stops that duty now", self.key, token)
                self.changed.set()
                on_loss()
            elif not token and self.token:
                log.info("lease %s taken by %s with token %d", self.key, self.identity, self.token)
                self.changed.set()
                on_gain(self.token)
            await asyncio.sleep(max(0.0, self.renew_every - (time.monotonic() - started)))

    async def while_held(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` only while the lease is held: started at each gain, cancelled at each loss
        ; returns when ``work`` does."""
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
        """Wait for ``condition``, checked at each gain or loss and when ``task`` ends."""
        while not condition():
            self.changed.clear()
            waiter = asyncio.create_task(self.changed.wait())
            waits: set[asyncio.Future[Any]] = {waiter} if task is None else {waiter, task}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
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


# KEYS[1] the lease, KEYS[2] its token counter; ARGV[1] the value it must hold now ('' free), ARGV[2]
# the taker's identity, ARGV[3] the TTL (ms). The lease is taken under a new token only if nothing
# changed since the taker looked (0 otherwise): a holder that renewed in between keeps it.
TAKE_OVER = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[2], 'PX', ARGV[3])
return token
"""


async def take_over(redis: aioredis.Redis, duty: str, asterisk: str, seen: str, identity: str, ttl: float = TTL) -> int:
    """Take ``duty``'s lease for ``asterisk`` from a holder that does not do the duty (the lease value
    ``seen``, '' when free): the node-gone duty closes a dead node's calls under a token of its
    own (ivr/node_watch.py). The holder's next renewal fails, so it stops and forgets those calls,
    and its writes still journaled are refused. Returns the token (0: the lease changed meanwhile).
    Give it back with :func:`give_back`."""
    script = redis.register_script(TAKE_OVER)
    return int(await script(keys=[keyspace.lease(duty, asterisk), keyspace.lease_token(duty, asterisk)],
                            args=[seen, identity, int(ttl * 1000)]))


async def give_back(redis: aioredis.Redis, duty: str, asterisk: str, token: int, identity: str) -> None:
    """Free a lease taken with :func:`take_over` (if still ours): the node's engines take it at once."""
    await redis.register_script(RELEASE)(keys=[keyspace.lease(duty, asterisk)], args=[f"{token} {identity}"])
