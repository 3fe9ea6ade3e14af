"""The engine's protocol-facing sections: AGI, AMI, Redis, SIP and the web console.

Hotline sections live with their features (queues, transfer, tickets, tracking, ivr.numbers);
:mod:`ivr.config.settings` composes them all.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from ivr.core.conftext import FILE_PATH, Host, HostPort, PjsipMatch, SipUri
from ivr.core.networks import parse_networks
from ivr.core.strict import NAME, Strict

__all__ = ["AgiSettings", "AmiSettings", "RedisSettings", "SipSettings", "WebSettings"]


class AgiSettings(Strict):
    host: Host = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)
    header_timeout: float = Field(5.0, gt=0, description="seconds to receive the AGI environment")
    allowed_peers: tuple[str, ...] = Field(
        ("127.0.0.1", "::1"), min_length=1,
        description="addresses or networks of the Asterisks that may connect (others are cut off at connect)",
    )

    @field_validator("allowed_peers")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)  # ValueError names the bad entry
        return tuple(v.strip() for v in value)
    call_timeout: float = Field(
        90.0, gt=0, description="seconds the engine may spend on one call before the dialplan takes over"
    )
    entry: Literal["fastagi", "process"] = Field(
        "fastagi", description="how Asterisk reaches the engine: FastAGI server, or ivr-agi per call"
    )
    env_file: str = Field(
        "/etc/ivr12345/ivr.env", pattern=FILE_PATH, description="IVR_* settings for process AGI (Asterisk passes no environment)"
    )
    engines: tuple[HostPort, ...] = Field(
        (), description="host:port of every engine's FastAGI server on this node, in the order the dialplan tries "
        "them (docs/cluster.md); empty: this engine's own host:port"
    )
    engine_turn_s: int = Field(
        60, ge=0, le=86400,
        description="with several engines: each takes the node's new calls for this many seconds in turn (the others "
        "only when it does not answer or vanishes), so every engine is used and the node pays for one busy event "
        "loop, not several; 0: every call starts at the next engine (docs/cluster.md)",
    )


class AmiSettings(Strict):
    host: Host = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = Field("ivr", pattern=NAME)
    secret: SecretStr | None = None
    seats_username: str = Field("ivr-seats", pattern=NAME, description="AMI user that logs agents in and out and pauses them")
    seats_secret: SecretStr | None = Field(None, description="its secret: IVR_AMI_SEATS_SECRET, never in config/")
    admin_username: str = Field("ivr-admin", pattern=NAME, description="AMI user that reloads Asterisk after a config change")
    admin_secret: SecretStr | None = Field(None, description="its secret: IVR_AMI_ADMIN_SECRET, never in config/")
    transfer_username: str = Field("ivr-transfer", pattern=NAME, description="AMI user that transfers calls in progress (ivr transfer)")
    transfer_secret: SecretStr | None = Field(None, description="its secret: IVR_AMI_TRANSFER_SECRET, never in config/")
    supervise_username: str = Field("ivr-supervise", pattern=NAME,
                                    description="AMI user that calls a supervisor's phone into an agent's call (ChanSpy)")
    supervise_secret: SecretStr | None = Field(None, description="its secret: IVR_AMI_SUPERVISE_SECRET, never in config/")
    status_username: str = Field("ivr-status", pattern=NAME, description="AMI user that only reads status (ivr cluster status)")
    status_secret: SecretStr | None = Field(None, description="its secret: IVR_AMI_STATUS_SECRET, never in config/")
    event_batch_ms: int = Field(
        200, ge=0, le=1000,
        description="the engine reads AMI events at most once per this window under load, and handles the "
        "window's events in one go (0: each as it comes); actions' responses are never held back",
    )


class RedisSettings(Strict):
    url: str = Field("redis://127.0.0.1:6379/0", description="a single Redis (used when no sentinel_service is set)")
    sentinel_service: str | None = Field(
        None, pattern=NAME, description="the master name Redis Sentinel watches (docs/cluster.md); set: Redis is reached "
        "through the sentinels, url is not used"
    )
    sentinels: tuple[HostPort, ...] = Field((), description="host:port of each Redis Sentinel")
    db: int = Field(0, ge=0, le=15, description="database number on the Sentinel-named master")
    password: SecretStr | None = Field(None, description="Redis' password: IVR_REDIS_PASSWORD, never in config/")
    sentinel_password: SecretStr | None = Field(
        None, description="the sentinels' password: IVR_REDIS_SENTINEL_PASSWORD, never in config/"
    )
    failover_s: float = Field(
        10.0, ge=0, le=300, description="through Sentinel: a command whose connection fails is retried this long, "
        "asking the sentinels for the master again (more than down-after-milliseconds plus the promotion)"
    )
    confirm_replicas: int = Field(
        1, ge=0, le=5, description="through Sentinel: a ticket or call record counts as written (its journal line "
        "goes, its ticket number may be pushed) once this many replicas hold it (WAIT; docs/cluster.md)"
    )
    confirm_timeout_ms: int = Field(1000, ge=10, le=60_000, description="how long a write waits for that confirmation")
    record_flush_ms: int = Field(
        500, ge=0, le=10_000,
        description="group commit: call records of this window reach Redis in one round trip (0: each at once); "
        "they are journaled on disk first, so waiting loses nothing",
    )


class SipSettings(Strict):
    bind: Host = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    media_address: Host | None = Field(
        None, description="address RTP binds to and announces; default: bind (required when bind is 0.0.0.0)"
    )
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(10999, ge=1024, le=65535)
    maxcalls: int | None = Field(None, ge=1, le=100_000, description="calls this Asterisk takes at once "
                                 "(asterisk.conf maxcalls; none: no cap). A cluster node's is in cluster.nodes")
    pstn_match: tuple[PjsipMatch, ...] = Field(
        ("127.0.0.1",), description="ip or ip:port of the carrier gateway sending citizen calls"
    )
    pstn_contact: SipUri | None = Field(
        None, description="where calls to citizens go out (callbacks): the carrier gateway's SIP URI"
    )


class WebSettings(Strict):
    """The web console (console/): served by ``ivr serve`` on loopback unless told otherwise."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8345, ge=1, le=65535)
    secure_cookies: bool = Field(
        False, description="mark cookies Secure: set it when the console is reached over TLS (a reverse proxy)"
    )
    idle_minutes: int = Field(30, ge=1, le=24 * 60, description="a session unused this long is signed out")
    max_hours: int = Field(12, ge=1, le=72, description="a session ends this long after sign-in, used or not")
    login_attempts: int = Field(5, ge=1, le=100, description="failed sign-ins per user and address before a lockout")
    login_lockout: int = Field(900, ge=10, le=86_400, description="seconds the failed sign-ins are counted and locked")
    # console/guard.py: sign-in budgets, the client address behind a proxy, back-pressure
    login_address_attempts: int = Field(20, ge=1, le=10_000, description="failed sign-ins per address (any user) per window")
    login_user_attempts: int = Field(30, ge=1, le=10_000,
                                     description="failed sign-ins per user (any address) per window; then only addresses it signed in from")
    login_global_attempts: int = Field(300, ge=1, le=1_000_000,
                                       description="failed sign-ins per window in all; then only known user and address pairs")
    login_workers: int = Field(2, ge=1, le=32, description="password checks (argon2) at once, off the event loop")
    login_queue: int = Field(16, ge=0, le=10_000, description="sign-ins waiting for a password check; beyond: 503")
    trusted_proxies: tuple[str, ...] = Field(
        (), description="addresses or networks of reverse proxies whose X-Forwarded-For names the client (default: none)")
    redis_connections: int = Field(32, ge=2, le=1000, description="the console's own Redis pool (the engine's is separate)")
    redis_wait: float = Field(2.0, gt=0, le=60, description="seconds a request waits for a pooled Redis connection; then 503")
    streams_per_user: int = Field(8, ge=1, le=100, description="open live event streams (wallboard, desk) per user")
    base_url: str = Field("", pattern=r"^(https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?)?$", max_length=200,
                          description="the console's address as staff reach it (links printed by the CLI, e.g. "
                          "`ivr recordings play-url`); empty: http://<host>:<port>")

    def url(self) -> str:
        """Where staff open the console: ``base_url``, else this host and port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return self.base_url.rstrip("/") or f"http://{host}:{self.port}"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        """Addresses or networks only (IVR_WEB_TRUSTED_PROXIES: separated by commas)."""
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        for item in items if isinstance(items, (list, tuple)) else ():
            if isinstance(item, str):
                ipaddress.ip_network(item, strict=False)  # ValueError: not an address or network
        return items
