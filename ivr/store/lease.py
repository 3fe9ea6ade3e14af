"""Leases in Redis: exactly one engine per Asterisk does each singleton duty (docs/cluster.md).

Every engine keeps its AMI session, but only the holder of a duty's lease acts on it: the
``follow`` lease (call following, tickets, KPI counts, the live wallboard, seat state, queued
callbacks), ``hours`` (the sub-center hours publisher) and ``retention`` (Asterisk's call logs).

A lease is a key holding ``"<token> <engine identity>"`` with a TTL (``PX``). Taking a free lease
draws a fencing token from a counter (``INCR``) that only grows, in the same script as the
``SET … PX`` (atomic: no holder without a token). The holder renews it every ``renew_every``
seconds (a script: only while nobody else took it). Another engine takes it as the TTL after the
holder's last renewal ends: an engine standing by learns the lease's time to live from each try
and tries again just after it. An engine keeps all its leases on one timer, renewing or
trying every one of them in one script a tick (:func:`keep_leases`): an idle engine's wake-ups and
round trips are CPU that a node spreads over its calls.

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
from typing import Any, Callable, Coroutine, NamedTuple, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.core.identity import pid_alive
from ivr.store import keyspace

log = logging.getLogger(__name__)

DUTIES = ("follow", "hours", "retention")
TTL = 3.0  # s: another engine takes the lease at most this long after the holder's last renewal
RENEW_EVERY = 1.0  # s
EXPIRY_MARGIN = 0.005  # s after a lease's expiry an engine standing by tries it (Redis expires a key after its ms)

# A free lease (or one this engine still holds from before it counted it lost, or ``predecessor``'s:
# a value held by this engine's dead predecessor, '' none) is taken under a new token; one held by
# another engine is not: {0, the value it holds, its ms to live} (a dead predecessor's is seen
# without a GET, and an engine standing by tries again the moment the lease expires).
ACQUIRE_FN = """
local function acquire(lease, counter, identity, ttl, predecessor)
  local held = redis.call('GET', lease)
  if held and held ~= predecessor and string.match(held, '^%d+ (.*)$') ~= identity then
    return {0, held, redis.call('PTTL', lease)}
  end
  local token = redis.call('INCR', counter)
  redis.call('SET', lease, token .. ' ' .. identity, 'PX', ttl)
  return {token, '', 0}
end
"""

# ``value``: what the lease must hold, ``token`` the holder's. 1 renewed, 0 lost. A key that expired
# while the holder could not reach Redis is set again if nobody drew a token since; a counter below
# the token (a Redis that lost it) is raised to it, so that tokens never go back.
RENEW_FN = """
local function renew(lease, counter, value, ttl, token)
  local held = redis.call('GET', lease)
  if held == value then return redis.call('PEXPIRE', lease, ttl) end
  if held then return 0 end
  local last = tonumber(redis.call('GET', counter) or '0')
  if last > tonumber(token) then return 0 end
  if last < tonumber(token) then redis.call('SET', counter, token) end
  redis.call('SET', lease, value, 'PX', ttl)
  return 1
end
"""

# KEYS[1] the lease, KEYS[2] its token counter; ARGV: the engine's identity, the TTL (ms), the predecessor's value
ACQUIRE = ACQUIRE_FN + "return acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"
# KEYS[1] the lease, KEYS[2] its token counter; ARGV: the value it must hold, the TTL (ms), the holder's token
RENEW = RENEW_FN + "return renew(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"
# Several leases of one engine in one round trip: KEYS lease, counter per lease; ARGV per lease
# 'a' or 'r' and the three arguments of acquire or renew; one reply per lease, in order.
TICK = ACQUIRE_FN + RENEW_FN + """
local out = {}
for i = 1, #KEYS / 2 do
  local op, x, ttl, y = ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i]
  if op == 'a' then out[i] = acquire(KEYS[2 * i - 1], KEYS[2 * i], x, ttl, y)
  else out[i] = renew(KEYS[2 * i - 1], KEYS[2 * i], x, ttl, y) end
end
return out
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
        self._acquire = redis.register_script(ACQUIRE)  # (a Script handles NOSCRIPT: a promoted replica)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self.changed = asyncio.Event()  # set at every gain and loss (for waiters)
        # after Redis did not answer, a non-holder leaves a free lease alone this long: the holder,
        # in doubt meanwhile, renews first (a failover's promoted replica may have lost the key), so
        # a Redis failover does not move the duty (a move drops the old holder's journaled writes)
        self._hold_back_until = 0.0
        self._expires_at = 0.0  # (monotonic) when the other engine's hold ends unless it renews; 0 unknown

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
        token = await self._taken(await self._acquire(keys=[self.key, self.token_key], args=self._acquire_args()))
        self.token = 0
        await _confirm_tokens([(self, token)] if token else [])
        return self.held

    def _acquire_args(self, predecessor: str = "") -> list[str | int]:
        return [self.identity, int(self.ttl * 1000), predecessor]

    async def _taken(self, reply: list[Any]) -> int:
        """The token ACQUIRE's reply gave (0: none); a lease its dead predecessor holds is taken in a
        second trip (rare: after a crash). Not acted on before a replica confirms it."""
        token, held = int(reply[0]), str(reply[1] or "")
        pttl = int(reply[2]) if len(reply) > 2 else -1
        self._expires_at = time.monotonic() + pttl / 1000 if pttl > 0 else 0.0
        if not token and self._dead_predecessor(held):
            token = int((await self._acquire(keys=[self.key, self.token_key], args=self._acquire_args(held)))[0])
        return token

    def _dead_predecessor(self, held: str) -> bool:
        _token, _, holder = held.partition(" ")
        slot, _, pid = holder.rpartition(":")
        mine, _, my_pid = self.identity.rpartition(":")
        return bool(held) and slot == mine and pid != my_pid and pid.isdigit() and not self.alive(int(pid))

    async def renew(self) -> bool:
        """Renew the lease; False: lost (the token is 0 now). Redis errors are raised (in doubt)."""
        return self._renewed(await self._renew(keys=[self.key, self.token_key], args=self._renew_args()))

    def _renew_args(self) -> list[str | int]:
        return [self._value(), int(self.ttl * 1000), self.token]

    def _renewed(self, reply: Any) -> bool:
        ok = bool(reply)
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
        await keep_leases([(self, on_gain, on_loss)])

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


Keeping = tuple[Lease, Callable[[int], None], Callable[[], None]]
"""A lease with what runs at its gain (``on_gain(token)``) and at its loss (``on_loss()``)."""


async def keep_leases(keeping: Sequence[Keeping]) -> None:
    """Take each lease when it is free and renew it while held, forever, all of them on one timer
    and in one round trip (:data:`TICK`) every ``renew_every``: an engine wakes once a second for
    its leases, not once per lease and twice per attempt (every idle wake-up costs CPU, and a
    node spreads a stand-by's idle CPU over its calls). The leases share one Redis client."""
    leases = [lease for lease, _gain, _loss in keeping]
    tick = leases[0].redis.register_script(TICK)
    every = min(lease.renew_every for lease in leases)
    while True:
        started = time.monotonic()
        before = [lease.token for lease in leases]
        due = [lease for lease in leases if lease.token or started >= lease._hold_back_until]
        try:
            async with asyncio.timeout(every):  # (wait_for of 3.11 may swallow a cancel)
                if due:
                    await _tick(tick, due)
            for lease in due:
                if lease.in_doubt and lease.token:
                    log.info("lease %s: Redis answers again, still held with token %d", lease.key, lease.token)
                lease.in_doubt = False
        except (RedisError, OSError, TimeoutError) as exc:
            for lease, token in zip(leases, before):
                if lease not in due:
                    continue
                if token and not lease.in_doubt:
                    log.warning("lease %s: renewal got no answer (%s); acting on in doubt, writes fenced by "
                                "token %d", lease.key, exc or "timeout", token)
                lease.in_doubt = bool(token)
                lease._expires_at = 0.0  # unknown until Redis answers
                if not token:
                    lease._hold_back_until = time.monotonic() + lease.ttl + lease.renew_every
        for (lease, on_gain, on_loss), token in zip(keeping, before):
            if token and not lease.token:
                log.warning("lease %s lost (token %d): this engine stops that duty now", lease.key, token)
                lease.changed.set()
                on_loss()
            elif not token and lease.token:
                log.info("lease %s taken by %s with token %d", lease.key, lease.identity, lease.token)
                lease.changed.set()
                on_gain(lease.token)
        await asyncio.sleep(max(0.0, _next_tick(leases, started + every) - time.monotonic()))


def _next_tick(leases: list[Lease], regular: float) -> float:
    """When to tick next: after ``renew_every``, or just after another engine's hold of a lease
    expires if that comes first (its holder stopped renewing: died or paused), so that an engine
    standing by takes it at once instead of up to ``renew_every`` later, without waking more often
    while the holder renews (its lease then always has more than ``renew_every`` to live)."""
    now = time.monotonic()
    expiries = [lease._expires_at + EXPIRY_MARGIN for lease in leases if not lease.token and lease._expires_at]
    return min([regular, *(at for at in expiries if at > now)])  # (one already past: the regular tick)


async def _tick(tick: Any, due: list[Lease]) -> None:
    """Renew the held leases and try the others, in one script; then act on each reply."""
    keys: list[str] = []
    args: list[str | int] = []
    for lease in due:
        keys += [lease.key, lease.token_key]
        args += ["r", *lease._renew_args()] if lease.token else ["a", *lease._acquire_args()]
    replies = await tick(keys=keys, args=args)
    taken: list[tuple[Lease, int]] = []
    for lease, reply in zip(due, replies):
        if lease.token:
            lease._renewed(reply)
        elif token := await lease._taken(reply):
            taken.append((lease, token))
    await _confirm_tokens(taken)


async def _confirm_tokens(taken: list[tuple[Lease, int]]) -> None:
    """Act on tokens once a replica holds them (a token a master took but a failover could forget
    is never used): one confirmation for the tokens of one tick, as WAIT covers every write before it."""
    refused: set[int] = set()
    for confirm in {id(lease.confirm): lease.confirm for lease, _token in taken if lease.confirm is not None}.values():
        try:
            await confirm()
        except RedisError as exc:  # not on a replica yet: a promoted one could give the token again
            log.warning("leases %s: tokens not confirmed by a replica (%s); not acting on them",
                        ", ".join(lease.key for lease, _token in taken if lease.confirm is confirm), exc)
            refused.add(id(confirm))
    for lease, token in taken:
        lease.token = 0 if id(lease.confirm) in refused else token


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
