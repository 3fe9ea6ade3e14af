"""What the console's pages work with, built once per process and kept on the aiohttp app.

``ivr serve`` builds it from the running engine (live settings and flows, its ticket store);
tests build it on a real Redis and a copy of ``config/`` (testbed/console.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import redis.asyncio as aioredis
from aiohttp import web

from console.publish import ConfigFiles
from console.clientaddr import Network, networks
from console.guard import SignInGuard
from console.sessions import SessionStore
from console.users import User, UserStore
from ivr.config import Settings, WebSettings
from tickets.audit import AuditEntry, Reader, action, write_audit

if TYPE_CHECKING:
    from ivr.core.latency import EngineLatency
    from ivr.hot_reload import LiveFlows, ReloadResult
    from ivr.store import RedisTarget
    from tickets.store import TicketStore


@dataclass(frozen=True)
class EngineView:
    """What only the engine process knows (``ivr serve`` hands it to the console). Defined here,
    beside :class:`Console` which holds it, so console.metrics imports it without a cycle."""

    active_calls: Callable[[], int]
    latency: "EngineLatency"
    journals: Callable[[], Mapping[str, Any]]  # name → a journaled writer (``backlog``, ``journal_only``)
    agi_refused: Callable[[], int] = lambda: 0  # FastAGI connections cut: not in agi.allowed_peers


@dataclass
class Console:
    redis: aioredis.Redis  # decode_responses=True
    web: WebSettings
    settings: Callable[[], Settings]  # the live settings (they change with a reload)
    config_dir: Path
    audit_log: Path
    flows: "LiveFlows | None" = None  # the engine's live flows (None: a console without an engine)
    tickets: "TicketStore | None" = None
    reload: "Callable[[], Awaitable[ReloadResult]] | None" = None  # the engine's own reload (SIGHUP path)
    engine: "EngineView | None" = None  # what only the engine process knows (/metrics)
    extra: dict[str, Any] = field(default_factory=dict)  # pages' own services, by name
    users: UserStore = field(init=False)
    sessions: SessionStore = field(init=False)
    guard: SignInGuard = field(init=False)
    trusted_proxies: tuple[Network, ...] = field(init=False)
    files: ConfigFiles | None = field(init=False)  # config/ publishing (needs the engine's flows and reload)

    def __post_init__(self) -> None:
        self.users = UserStore(self.redis)
        self.sessions = SessionStore(self.redis, self.web)
        self.guard = SignInGuard(self.redis, self.web)
        self.trusted_proxies = networks(self.web.trusted_proxies)
        flows = self.flows
        self.files = ConfigFiles(self.config_dir, lambda: flows.current.catalog, self.reload) \
            if flows is not None and self.reload is not None else None

    async def audit(self, user: User | str, command: str, what: dict[str, Any], *, reason: str = "") -> None:
        """One line in the shared audit log, on disk before this returns (AuditError if not)."""
        await self.write_audit(action(reader(user), command, what, reason=reason))

    async def write_audit(self, entry: AuditEntry) -> None:
        await asyncio.to_thread(write_audit, self.audit_log, entry)


def console_redis(target: RedisTarget, web: WebSettings) -> aioredis.Redis:
    """The console's own Redis client: a bounded pool (``web.redis_connections``) where a request
    waits up to ``web.redis_wait`` s for a connection, then gets 503 (console/app.py), so a flood
    from outside neither fails with 500 nor takes connections the engine's calls need."""
    from ivr.store import redis_client

    return redis_client(target, web.redis_connections, 5.0, wait=web.redis_wait, name="ivr-console")


def reader(user: User | str) -> Reader:
    """How the audit log names a console user: ``name@console`` (CLI lines name the OS user)."""
    return Reader(user=f"{user.name if isinstance(user, User) else user}@console")


CONSOLE = web.AppKey("console", Console)
