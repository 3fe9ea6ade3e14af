"""The engines of a cluster in Redis: each engine's status (renewed by its heartbeat, so a dead
engine's status expires) and the announced config version every engine should run.

An announcement is numbered (``INCR``), kept (``ivr:config:wanted``: an engine that was down reads
it when it starts) and published (pub/sub: the running engines hear it at once). docs/cluster.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping, NamedTuple, cast

import redis.asyncio as aioredis

from ivr.store import keyspace

STATUS_TTL = 15.0
"""Seconds a status outlives its engine's last heartbeat (the heartbeat renews it every 5 s)."""

# KEYS: the counter, the wanted hash; ARGV: version, origin, at, the channel. One step, so two
# announcements never leave the hash naming the older one under the newer number.
ANNOUNCE = """
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'seq', seq, 'version', ARGV[1], 'origin', ARGV[2], 'at', ARGV[3])
redis.call('PUBLISH', ARGV[4], seq)
return seq
"""


@dataclass(frozen=True)
class Announcement:
    seq: int
    version: str  # the announcing engine's live version: "<content hash>-<compile time>"
    origin: str  # the identity of the engine that announced it
    at: str  # ISO UTC

    @property
    def content(self) -> str:
        return content_of(self.version)


def content_of(version: str) -> str:
    """The content hash of a version id (``<hash>-<compile time>``): two engines that compiled
    the same files at different moments run the same content."""
    return version.split("-", 1)[0]


class EngineRegistry:
    """The engines' statuses and the config announcement, over one Redis client (not owned)."""

    def __init__(self, redis: aioredis.Redis, ttl: float = STATUS_TTL):
        self.redis = redis
        self.ttl = ttl

    async def publish(self, identity: str, fields: Mapping[str, str]) -> None:
        """Write the engine's status and renew it (and its place among the live engines)."""
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keyspace.engine(identity), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.pexpire(keyspace.engine(identity), int(self.ttl * 1000))
            pipe.zadd(keyspace.ENGINES, {identity: now})
            pipe.zremrangebyscore(keyspace.ENGINES, "-inf", now - self.ttl)
            await pipe.execute()

    async def remove(self, identity: str) -> None:
        """An engine that stops cleanly leaves the list at once (a killed one when its TTL ends)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keyspace.engine(identity))
            pipe.zrem(keyspace.ENGINES, identity)
            await pipe.execute()

    async def status(self, identity: str) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(keyspace.engine(identity)))

    async def statuses(self) -> dict[str, dict[str, str]]:
        """The live engines' statuses by identity (heartbeat within the TTL), in identity order."""
        names = cast(list[str], await self.redis.zrangebyscore(keyspace.ENGINES, time.time() - self.ttl, "+inf"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(keyspace.engine(name))
            found = await pipe.execute()
        return {name: status for name, status in sorted(zip(names, found)) if status}

    async def announce(self, version: str, origin: str) -> Announcement:
        """Announce ``version`` as the one every engine should run; returns it with its number."""
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        seq = await self.redis.eval(ANNOUNCE, 2, keyspace.CONFIG_SEQ, keyspace.CONFIG_WANTED,
                                    version, origin, at, keyspace.CONFIG_ANNOUNCE)
        return Announcement(int(seq), version, origin, at)

    async def wanted(self) -> Announcement | None:
        """The last announcement, or None if there never was one."""
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.CONFIG_WANTED))
        if not raw.get("seq", "").isdigit():
            return None
        return Announcement(int(raw["seq"]), raw.get("version", ""), raw.get("origin", ""), raw.get("at", ""))

    async def subscribe(self) -> Any:
        """A pub/sub subscribed to the announcements (the caller reads and closes it)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keyspace.CONFIG_ANNOUNCE)
        return pubsub


class Lag(NamedTuple):
    """Why an engine does not run the announced version: it has not confirmed the announcement
    yet (``unconfirmed``), its reload was refused (``refused``) or its files compile to another
    content (``other``); ``version`` is what it runs."""

    why: Literal["unconfirmed", "refused", "other"]
    version: str


def local_time(iso: str) -> str:
    """A status time for people: local, to the second ("" when it is not a time)."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ""


def seconds_since(iso: str) -> float | None:
    """How long ago a status time was (a heartbeat's age); None when it is not a time."""
    try:
        return max(0.0, time.time() - datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return None


def out_of_step(wanted: Announcement | None, statuses: Mapping[str, Mapping[str, str]]) -> dict[str, Lag]:
    """The live engines that do not (yet) run the announced version; empty when every engine
    confirmed the last announcement and runs its content."""
    if wanted is None:
        return {}
    behind = {}
    for name, status in statuses.items():
        seq, version = status.get("seq", ""), status.get("version", "")
        if seq != str(wanted.seq):
            behind[name] = Lag("unconfirmed", version)
        elif content_of(version) != wanted.content:
            behind[name] = Lag("refused" if status.get("last_reload") == "refused" else "other", version)
    return behind
