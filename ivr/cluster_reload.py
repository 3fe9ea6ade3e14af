"""One config version on every engine: an engine that reloads on its own (SIGHUP, ``ivr reload``,
the console's publish or rollback) announces its new version through Redis; every other engine
hears it (pub/sub, and a poll at each heartbeat for a missed message) and reloads its own
``config/``; an engine that starts reads the last announcement. Each confirms in its status.

The announcement names a version, it does not carry files: the engines of a node share one
``config/`` and every other host gets the same files deployed first (docs/cluster.md). An
engine whose files differ reloads, runs its own content and says so in its status (its
version's content hash is not the announced one), so ``ivr reload --status`` shows it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timezone
from typing import Awaitable, Callable, Iterable, Mapping

from redis.exceptions import RedisError

from ivr.hot_reload import ReloadResult
from ivr.store.engines import Announcement, EngineRegistry, content_of

log = logging.getLogger("ivr.cluster")

HEARTBEAT = 5.0  # seconds between status renewals (the status lives STATUS_TTL after the last)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class ClusterReload:
    """This engine's status in Redis and its part in the cluster's config announcements."""

    def __init__(self, registry: EngineRegistry, identity: str, live_version: Callable[[], str],
                 reload: Callable[[], Awaitable[ReloadResult]], leases: Callable[[], Iterable[str]] = tuple,
                 heartbeat: float = HEARTBEAT, extra: Callable[[], Mapping[str, str]] = dict):
        """``extra``: more fields the heartbeat writes (the engine's latency histograms): one
        write and one wake-up every ``heartbeat`` seconds for the whole status."""
        self.registry = registry
        self.identity = identity
        self.live_version = live_version
        self._reload = reload  # reloads config/ without announcing (the engine's own reload path)
        self.leases = leases
        self.extra = extra
        self.heartbeat = heartbeat
        self.handled: Announcement | None = None  # the last announcement this engine acted on
        self.last_reload = "ok"  # the engine started on a fully valid config
        self.errors: tuple[str, ...] = ()
        self.reloaded_at = now_iso()

    def status(self) -> dict[str, str]:
        return {
            "identity": self.identity,
            "version": self.live_version(),
            "pid": str(os.getpid()),
            "last_reload": self.last_reload,
            "errors": "\n".join(self.errors),
            "at": self.reloaded_at,
            "seq": str(self.handled.seq if self.handled else 0),
            "heartbeat": now_iso(),
            "leases": ",".join(self.leases()),
            **self.extra(),
        }

    async def publish(self) -> None:
        """Write the status now; a Redis outage only delays it (the heartbeat writes it again)."""
        try:
            await self.registry.publish(self.identity, self.status())
        except (RedisError, OSError) as exc:
            log.warning("could not publish engine status: %s", exc)

    async def reloaded(self, result: ReloadResult, announce: bool) -> None:
        """After a reload: announce a version that went live (unless the reload answered an
        announcement), then confirm in the status. A refused reload announces nothing."""
        self.last_reload = "ok" if result.ok else "refused"
        self.errors = result.errors
        self.reloaded_at = now_iso()
        if result.ok and announce:
            try:
                self.handled = await self.registry.announce(result.version, self.identity)
            except (RedisError, OSError) as exc:
                log.warning("version %s is live here but could not be announced to the other engines: %s",
                            result.version, exc)
        await self.publish()

    async def catch_up(self) -> Announcement | None:
        """Act on an announcement not handled yet: reload unless this engine already runs its
        content (the engine that announced it, or one whose files were compiled after the change).
        Any announcement other than the last one handled counts, not only a higher number: a
        Redis failover may lose the last increments, and numbers then repeat."""
        wanted = await self.registry.wanted()
        if wanted is None or wanted == self.handled:
            return None
        self.handled = wanted
        if wanted.content == content_of(self.live_version()):
            await self.publish()
            return wanted
        log.info("engine %s announced version %s; reloading config/", wanted.origin, wanted.version)
        result = await self._reload()  # publishes the status, with this announcement handled
        if result.ok and content_of(result.version) != wanted.content:
            log.warning("config/ here compiles to version %s, not the announced %s: deploy the same config/ "
                        "to every host (docs/cluster.md)", result.version, wanted.version)
        return wanted

    async def run(self) -> None:
        """Follow announcements and renew the status; after a Redis failure, subscribe again."""
        while True:
            try:
                await self._follow()
            except (RedisError, OSError) as exc:
                log.warning("config announcements: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(self.heartbeat)  # then subscribe again: to the new master after a failover

    async def _follow(self) -> None:
        pubsub = await self.registry.subscribe()
        try:
            loop = asyncio.get_running_loop()
            next_beat = 0.0
            while True:
                await self.catch_up()  # also after a timeout: a message lost in a failover is not missed
                if loop.time() >= next_beat:
                    await self.publish()
                    next_beat = loop.time() + self.heartbeat
                await pubsub.get_message(timeout=max(0.05, next_beat - loop.time()))
        finally:
            await pubsub.aclose()

    async def leave(self) -> None:
        """A clean stop: out of the list at once."""
        try:
            await self.registry.remove(self.identity)
        except (RedisError, OSError) as exc:
            log.warning("could not remove engine status: %s", exc)
