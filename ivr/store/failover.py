"""Redis behind Sentinel (docs/cluster.md, Redis): how a client finds the master, how long a
command keeps trying while Sentinel promotes a replica, and when a write counts as safe.

redis-py's Sentinel client asks the sentinels for the master only when a connection fails, and
during a failover they may still name the dead or demoted master (redis-py turns a demoted
master's READONLY into a ConnectionError). So every client of a Sentinel target retries a failed
connection for ``redis.failover_s`` seconds of wall time (:class:`FailoverRetry`), a budget set
above ``down-after-milliseconds`` plus the promotion, instead of redis-py's count of retries.

Replication is asynchronous: a write the master acknowledged may die with it. A journaled write
(tickets, call records) therefore counts as written only once ``redis.confirm_replicas`` replicas
hold it (:func:`confirm`, Redis' WAIT): until then its journal line stays and is replayed, and a
ticket number it was given is not used (pushed) — the promoted replica, which Sentinel picks by
the largest replication offset, holds every confirmed number, so it never gives one out again.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ivr.config import RedisSettings
from ivr.store import keyspace

T = TypeVar("T")

RedisTarget = str | RedisSettings
"""Where Redis is: a URL (one Redis; tests and tools) or the ``redis:`` settings (a URL or a
Sentinel service)."""


class NotReplicated(RedisError):
    """Fewer replicas than asked for confirmed a write in time: it may not survive a failover."""


class FailoverRetry(Retry):
    """Retry connection failures for ``budget_s`` seconds of wall time, backing off up to 0.5 s.

    A time budget rather than a count: redis-py nests the connection's own retry (its connect asks
    the sentinels) inside the command's, and both stop once the budget from the first failure is
    spent, so a Redis that stays away costs about ``budget_s``, not a product of counts."""

    def __init__(self, budget_s: float):
        super().__init__(ExponentialBackoff(cap=0.5, base=0.05), -1,
                         (RedisConnectionError, RedisTimeoutError, ResponseError), _retryable)
        self.budget_s = budget_s

    async def call_with_retry(self, do: Callable[[], Awaitable[T]], fail: Callable[..., Any],
                              is_retryable: Callable[[Exception], bool] | None = None,
                              with_failure_count: bool = False) -> T:
        deadline = time.monotonic() + self.budget_s

        def within_budget(error: Exception) -> bool:
            return time.monotonic() < deadline and (is_retryable is None or is_retryable(error))

        return await super().call_with_retry(do, fail, within_budget, with_failure_count)


def in_failover(error: BaseException) -> bool:
    """A refusal that lasts only while Sentinel reorganises the group: a new master whose replicas
    have not reattached yet (NOREPLICAS, its ``min-replicas-to-write``), a demoted master
    (READONLY), one that lost its master (MASTERDOWN)."""
    return isinstance(error, ResponseError) and str(error).startswith(FAILOVER_REFUSALS)


def _retryable(error: Exception) -> bool:
    """A lost connection or a timeout (the retry's error types), or a failover's refusal."""
    return not isinstance(error, ResponseError) or in_failover(error)


FAILOVER_REFUSALS = ("NOREPLICAS", "READONLY", "MASTERDOWN")


class _MasterConnection(SentinelManagedConnection):
    """A connection to the master that reconnects through the sentinels. redis-py's own reconnects
    a dropped connection to the address it had (redis/redis-py#3874): a retried command would
    knock on the dead master until its budget ran out."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect()  # asks the sentinels which server is the master now
        await super().send_packed_command(command, check_health)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's pool where a caller waits for a free connection (the console's back-pressure)."""


class _MasterClient(aioredis.Redis):
    """A client of the Sentinel-named master that also closes its connections to the sentinels."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


def uses_sentinel(target: RedisTarget) -> bool:
    return isinstance(target, RedisSettings) and target.sentinel_service is not None


def sentinel_client(settings: RedisSettings, options: dict[str, Any], wait: float | None) -> aioredis.Redis:
    """A client of the master ``settings.sentinel_service`` names (``options``: redis-py's
    connection options). Commands retry for ``settings.failover_s`` (:class:`FailoverRetry`)."""
    assert settings.sentinel_service is not None
    if not settings.sentinels:
        raise ValueError("redis.sentinel_service is set but redis.sentinels names no sentinel")
    socket = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.sentinel_password is not None:
        socket["password"] = settings.sentinel_password.get_secret_value()
    sentinel = Sentinel([_host_port(s) for s in settings.sentinels], sentinel_kwargs=socket)
    options = {**options, "db": settings.db, "retry": FailoverRetry(settings.failover_s),
               "connection_class": _MasterConnection}
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    pool_class: type[SentinelConnectionPool] = SentinelConnectionPool
    if wait is not None:
        pool_class, options["timeout"] = _BlockingSentinelPool, wait
    client = cast(_MasterClient, sentinel.master_for(settings.sentinel_service, redis_class=_MasterClient,
                                                     connection_pool_class=pool_class, **options))
    client.sentinels = sentinel
    return client


def confirm_replicas(target: RedisTarget) -> tuple[int, int]:
    """(replicas, timeout ms) a journaled write waits for (0: no confirmation, a single Redis)."""
    if isinstance(target, RedisSettings) and uses_sentinel(target):
        return target.confirm_replicas, target.confirm_timeout_ms
    return 0, 0


async def confirm(redis: aioredis.Redis, replicas: int, timeout_ms: int) -> None:
    """Return once ``replicas`` replicas hold every write the master took before this call;
    :class:`NotReplicated` if they do not within ``timeout_ms``. A fresh write on the same
    connection first (the mark), because WAIT covers only the writes of its own connection."""
    if replicas <= 0:
        return
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(keyspace.REPLICATION_MARK, "1")
        pipe.execute_command("WAIT", replicas, timeout_ms)
        _ok, acked = await pipe.execute()
    if int(acked) < replicas:
        raise NotReplicated(f"{acked} of {replicas} replica(s) confirmed the write within {timeout_ms} ms")


def where(target: RedisTarget) -> str:
    """Where Redis is, for a message: host and port or the Sentinel service, never a password."""
    from urllib.parse import urlsplit

    if isinstance(target, RedisSettings):
        if target.sentinel_service is not None:
            return f"Sentinel service {target.sentinel_service} ({', '.join(target.sentinels)})"
        target = target.url
    parts = urlsplit(target)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or 6379}"


def url_of(target: RedisTarget) -> str:
    """The URL of a plain target (a Sentinel target has none: ValueError)."""
    if isinstance(target, str):
        return target
    if uses_sentinel(target):
        raise ValueError("a Sentinel target has no URL")
    return target.url


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
