"""Typed, layered configuration: built-in defaults → ``config/*.yaml`` → environment.

Merged once at start and passed down as frozen objects; business code never reads
``os.environ``. Every file error names file, line and column (see :mod:`ivr.core.yamlsource`).
Flows live in ``config/flows/`` and are compiled by :mod:`ivr.flows`, not here.

Secrets never live in ``config/``: the AMI secret comes from ``IVR_AMI_SECRET``, an agent
phone's SIP password from ``IVR_AGENT_SECRET_<AGENT>``, the key of caller digests from
``IVR_CALLER_KEY`` (the test bed generates its own).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from ivr.agi.peers import parse_networks
from ivr.core.callerid import CallerSettings
from ivr.conftext import FILE_PATH, Host, PjsipMatch, SipUri, Title, line_breaks
from ivr.secret_policy import agent_secret_variable
from ivr.core.strict import NAME, NUMBER, Strict
from ivr.core.yamlsource import Document, Location, SourceError, SourceErrors, load, pydantic_errors
from queues.model import Agent, PauseReasons, Queue
from queues.priority import PrioritySettings
from tickets.scope import OutOfScopeMatter
from transfer.model import EMERGENCY_TRUNK, EmergencyTrunk, Platform, SubCenter

# --- engine (protocol-facing) sections -------------------------------------------------

LIST_FIELDS = ("pstn_match", "allowed_peers")  # comma-separated in the environment


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
    event_batch_ms: int = Field(
        200, ge=0, le=1000,
        description="the engine reads AMI events at most once per this window under load, and handles the "
        "window's events in one go (0: each as it comes); actions' responses are never held back",
    )


class RedisSettings(Strict):
    url: str = "redis://127.0.0.1:6379/0"
    record_flush_ms: int = Field(
        500, ge=0, le=10_000,
        description="group commit: call records of this window reach Redis in one round trip (0: each at once); "
        "they are journaled on disk first, so waiting loses nothing",
    )


class TrackingSettings(Strict):
    """Following calls over AMI and finishing them from Asterisk's own logs."""

    cdr_file: str = Field(
        "/var/log/asterisk/cdr-custom/Master.csv",
        description="Asterisk's CDR file (cdr_custom, see asterisk-conf/cdr_custom.conf) as the engine sees it",
    )
    queue_log: str = Field("/var/log/asterisk/queue_log", description="Asterisk's queue_log as the engine sees it")
    lost_after: float = Field(
        30.0, gt=0, description="seconds a call that vanished without a CDR is waited for before it is closed as lost",
    )


class SipSettings(Strict):
    bind: Host = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    media_address: Host | None = Field(
        None, description="address RTP binds to and announces; default: bind (required when bind is 0.0.0.0)"
    )
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(10999, ge=1024, le=65535)
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        """Addresses or networks only (IVR_WEB_TRUSTED_PROXIES: separated by commas)."""
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        for item in items if isinstance(items, (list, tuple)) else ():
            if isinstance(item, str):
                ipaddress.ip_network(item, strict=False)  # ValueError: not an address or network
        return items


# --- hotline sections (queues and sub-centers live in their feature packages) ----------


class Compliance(Strict):
    """Why a dialable number's flow may take longer than the 15 s to a human (``ivr check``)."""

    exempt: str = Field(min_length=4, description="the reason, for the auditor (e.g. a demo line, a self-service line)")


class NumberEntry(Strict):
    """One dialed number: 12345 itself, or an old department number folded into it."""

    mode: Literal["main", "merged", "dual", "subcenter"]
    title: Title = Field(description="written into Asterisk's dialplan as a comment: one line, no $ ; [ ] \\ { } \" |")
    department: str = Field("", description="the department the number belongs to (责任单位)")
    flow: str | None = Field(None, description="its own flow; merged numbers take the 12345 flow")
    skill: str | None = Field(None, description="dual: the queue its calls are pre-routed to (expert seats)")
    expert: bool = Field(False, description="the department has expert seats (专家座席) at the hotline")
    subcenter: str | None = None
    announce_until: date | None = Field(
        None, description="merged: the transitional notice (过渡期语音提示) is played up to this day"
    )
    compliance: Compliance | None = Field(
        None, description="exempt from the 15 s worst case to a human, and why (every other number is held to it)"
    )


class NumberPlan(Strict):
    """A number plan file (``config/plans/<name>.yaml``): every number that reaches the platform."""

    title: str
    source: str = ""
    numbers: dict[str, NumberEntry]


RequestTypeName = Literal["consult", "help", "complaint", "report", "suggestion"]


class Webhook(Strict):
    """A department endpoint that receives ticket events (secret: ``IVR_WEBHOOK_SECRET_<NAME>``)."""

    url: str = Field(pattern=r"^https?://")
    events: tuple[str, ...] = Field((), description="ticket events to send (opened, closed, …); empty: all")
    lines: tuple[str, ...] = Field((), description="only tickets of these dialed numbers; empty: all")
    timeout: float = Field(5.0, gt=0, le=60)
    unmasked_caller: bool = Field(False, description="send the caller number in full (the handling staff need it)")
    plain_http: bool = Field(False, description="allow an http:// url with unmasked_caller: only where the path is "
                             "trusted end to end (a TLS sidecar on the same host); otherwise caller numbers cross "
                             "the network in clear text")

    @model_validator(mode="after")
    def _caller_numbers_travel_encrypted(self) -> "Webhook":
        if self.unmasked_caller and self.url.lower().startswith("http://") and not self.plain_http:
            raise ValueError("unmasked_caller sends caller numbers in full: the url must be https:// "
                             "(or set plain_http: true for a trusted local hop)")
        return self


class PushSettings(Strict):
    max_tries: int = Field(6, ge=1, le=100, description="attempts per event and endpoint before it is dead-lettered")
    backoff: float = Field(1.0, gt=0, description="seconds before the first retry; doubles with each try")
    max_backoff: float = Field(300.0, gt=0)


class TicketSettings(Strict):
    """Ticket stubs: handling deadlines, retention of personal data, repeat callers, push."""

    retention_days: int = Field(
        180, ge=1, le=3650, description="tickets and caller numbers expire after this many days (Redis TTL, CDR rotation)",
    )
    kpi_retention_days: int = Field(
        400, ge=1, le=3650, description="daily service-level counters (no personal data) expire after this many days; "
        "5-minute buckets after 3 days",
    )
    deadlines: dict[RequestTypeName, int] = Field(
        {"consult": 3, "help": 3, "complaint": 7, "report": 7, "suggestion": 3},
        description="handling deadline in working days, counted from the day after receipt",
    )
    crisis: bool = Field(False, description="crisis mode: deadlines in hours (crisis_hours) instead of working days")
    crisis_hours: dict[RequestTypeName, int] = {"consult": 24, "help": 24, "complaint": 48, "report": 48, "suggestion": 24}
    repeat_days: int = Field(30, ge=0, le=365, description="a caller with a ticket this recent is a repeat caller")
    satisfaction: bool = Field(True, description="ask the caller for a 1–5 rating after the agent hangs up")
    satisfaction_timeout: int = Field(8, ge=1, le=60, description="seconds the caller has to key a rating")
    webhooks: dict[str, Webhook] = {}
    push: PushSettings = PushSettings()


class Settings(Strict):
    agi: AgiSettings = AgiSettings()
    ami: AmiSettings = AmiSettings()
    redis: RedisSettings = RedisSettings()
    sip: SipSettings = SipSettings()
    agents: dict[str, Agent] = {}
    queues: dict[str, Queue] = {}
    pause_reasons: PauseReasons = {"1": "小休"}
    subcenters: dict[str, SubCenter] = {}
    emergency: EmergencyTrunk | None = Field(None, description="the trunk to 110/119/120/122 (应急联动)")
    platforms: dict[str, Platform] = Field({}, description="other 12345 platforms calls are transferred to (平台互转)")
    plan: str | None = Field(None, description="the number plan in config/plans/ (IVR_PLAN overrides)")
    numbers: dict[str, NumberEntry] = Field({}, description="the plan's numbers, then numbers of this deployment")
    tracking: TrackingSettings = TrackingSettings()
    web: WebSettings = WebSettings()
    tickets: TicketSettings = TicketSettings()
    priority: PrioritySettings = PrioritySettings()
    callers: CallerSettings = Field(CallerSettings(), description="caller IDs: which numbers may be called back")
    out_of_scope: dict[str, OutOfScopeMatter] = Field({}, description="matters 12345 does not accept (不予受理)")

    def reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Names that point nowhere, as (path in the config, reason)."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if "general" not in self.queues:
            out.append((("queues",), "a queue named 'general' is required: the 7×24 queue every failure falls back to"))
        for qname in self.queues:
            seen, q = [qname], self.queues[qname]
            while q.overflow and q.overflow in self.queues and q.overflow not in seen:
                seen.append(q.overflow)
                q = self.queues[q.overflow]
            if q.overflow in seen:
                out.append((("queues", qname, "overflow"), "queue overflows form a cycle: " + " → ".join([*seen, q.overflow])))
        for name in self.tickets.webhooks:
            if not re.fullmatch(NAME, name):
                out.append((("tickets", "webhooks", name), f"name {name!r} must match {NAME}"))
        keys: dict[str, str] = {}
        for mname, matter in self.out_of_scope.items():
            if matter.agent_key and matter.agent_key in keys:
                out.append((("out_of_scope", mname, "agent_key"), f"agent_key {matter.agent_key} is taken by matter {keys[matter.agent_key]!r}"))
            elif matter.agent_key:
                keys[matter.agent_key] = mname
        for section in ("agents", "queues", "subcenters", "platforms", "out_of_scope"):
            for name in getattr(self, section):
                if not re.fullmatch(NAME, name):
                    out.append(((section, name), f"name {name!r} must match {NAME}"))
        skills = {q.skill_name(qname) for qname, q in self.queues.items()}
        for aname, agent in self.agents.items():
            for skill in agent.skills:
                if skill not in skills:
                    out.append((("agents", aname, "skills", skill), f"skill {skill!r} is served by no queue"))
        for qname, q in self.queues.items():
            if q.overflow and q.overflow not in self.queues:
                out.append((("queues", qname, "overflow"), f"overflow {q.overflow!r} is not a defined queue"))
            if q.callback is not None and not self.sip.pstn_contact:
                out.append((("queues", qname, "callback"), "a callback needs sip.pstn_contact (how calls to citizens go out)"))
            if qname == "general" and q.hours is not None:
                out.append((("queues", qname, "hours"), "the general queue is 7×24: it has no hours"))
        if EMERGENCY_TRUNK in self.subcenters:
            out.append((("subcenters", EMERGENCY_TRUNK), f"{EMERGENCY_TRUNK!r} is the emergency trunk's name, not a sub-center's"))
        for pname in self.platforms:  # each is a PJSIP endpoint of its own name
            if pname in self.subcenters or pname in self.agents or pname in (EMERGENCY_TRUNK, "pstn"):
                out.append((("platforms", pname), f"{pname!r} already names a trunk or an agent"))
            elif self.platforms[pname].fallback_queue not in self.queues:
                out.append((("platforms", pname, "fallback_queue"),
                            f"{self.platforms[pname].fallback_queue!r} is not a defined queue"))
        for sname, s in self.subcenters.items():
            if s.fallback_queue not in self.queues:
                out.append((("subcenters", sname, "fallback_queue"), f"{s.fallback_queue!r} is not a defined queue"))
        for num, n in self.numbers.items():
            if not re.fullmatch(NUMBER, num):
                out.append((("numbers", num), f"number {num!r} must be 3-16 digits"))
            if n.subcenter and n.subcenter not in self.subcenters:
                out.append((("numbers", num, "subcenter"), f"{n.subcenter!r} is not a defined sub-center"))
            if n.mode == "subcenter" and not n.subcenter:
                out.append((("numbers", num, "mode"), "a sub-center number needs subcenter: (its gateway in subcenters.yaml)"))
            if n.skill and n.skill not in self.queues:
                out.append((("numbers", num, "skill"), f"skill {n.skill!r} is not a queue in queues.yaml"))
            if n.expert and not (n.skill or n.flow):
                out.append((("numbers", num, "expert"), "expert seats need a skill: (the expert queue) or a flow"))
            if n.announce_until and n.mode != "merged":
                out.append((("numbers", num, "announce_until"), "only a merged number has a transitional notice"))
        if self.sip.rtp_start >= self.sip.rtp_end:
            out.append((("sip", "rtp_start"), "sip.rtp_start must be below sip.rtp_end"))
        return out


ENGINE_MODELS: dict[str, type[Strict]] = {
    "agi": AgiSettings, "ami": AmiSettings, "redis": RedisSettings, "sip": SipSettings, "tracking": TrackingSettings,
    "web": WebSettings,
}
ENGINE_SECTIONS = tuple(ENGINE_MODELS)


@dataclass(frozen=True)
class LoadedConfig:
    """Settings plus where each top-level section came from (for error messages)."""

    settings: Settings
    config_dir: Path
    origins: Mapping[str, str]  # "agi.port" -> "config/engine.yaml:3:9" or "environment IVR_AGI_PORT"

    def origin(self, dotted: str) -> str:
        return self.origins.get(dotted, "built-in default")


class ConfigError(Exception):
    """Start-up must stop: one clear line (or a few) saying what and where."""


def load_config(config_dir: str | Path = "config", environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read every ``*.yaml`` directly in ``config_dir`` (not ``flows/``) and the environment."""
    environ = os.environ if environ is None else environ
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(f"config directory {config_dir} does not exist")
    merged: dict[str, Any] = {}
    owner: dict[str, Document] = {}
    origins: dict[str, str] = {}
    errors: list[SourceError] = []
    for path in sorted(config_dir.glob("*.yaml")):
        try:
            doc = load(path)
        except SourceError as exc:
            errors.append(exc)
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            errors.append(SourceError(Location(str(path), 1, 1), "top level must be a mapping"))
            continue
        for key, value in doc.data.items():
            if key in merged:
                errors.append(doc.error((key,), f"{key!r} is already defined in {owner[key].file}", at_key=True))
                continue
            if key not in Settings.model_fields:
                errors.append(doc.error((key,), f"unknown key {key!r}", at_key=True))
                continue
            merged[key] = value
            owner[key] = doc
            for path_, loc in doc.value_at.items():
                if path_ and path_[0] == key:
                    origins[".".join(str(p) for p in path_)] = str(loc)
    if errors:
        raise ConfigError(str(SourceErrors(errors)))

    number_docs: dict[str, Document] = {}  # where each number of the plan was written
    plan = environ.get("IVR_PLAN") or merged.get("plan")
    if plan is not None:
        if environ.get("IVR_PLAN"):
            merged["plan"], origins["plan"] = plan, "environment IVR_PLAN"
        plan_doc = _load_plan(config_dir, str(plan), owner.get("plan"), origins)
        local = merged.get("numbers") or {}
        if not isinstance(local, dict):
            raise ConfigError(f"{owner['numbers'].where(('numbers',))}: numbers must be a mapping")
        number_docs = {number: plan_doc for number in plan_doc.data["numbers"] if number not in local}
        merged["numbers"] = {**plan_doc.data["numbers"], **local}
        for path_, loc in plan_doc.value_at.items():
            if len(path_) > 1 and path_[0] == "numbers" and path_[1] in number_docs:
                origins[".".join(str(p) for p in path_)] = str(loc)

    for var, value in sorted(environ.items()):
        section, _, field_ = var.removeprefix("IVR_").lower().partition("_")
        if not var.startswith("IVR_") or section not in ENGINE_SECTIONS:
            continue  # not a setting (IVR_CONFIG, IVR_STATE_DIR, IVR_AGENT_SECRET_*, ...)
        if field_ not in ENGINE_MODELS[section].model_fields:
            known = ", ".join(f"IVR_{section.upper()}_{f.upper()}" for f in ENGINE_MODELS[section].model_fields)
            raise ConfigError(f"environment {var}: unknown setting (known: {known})")
        section_data = merged.setdefault(section, {})
        if not isinstance(section_data, dict):
            raise ConfigError(f"{owner[section].where((section,))}: {section} must be a mapping")
        section_data[field_] = value.split(",") if field_ in LIST_FIELDS else value
        origins[f"{section}.{field_}"] = f"environment {var}"

    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, owner, origins)) from None
    # any text, rendered into Asterisk's files today or not, is one line (ivr/conftext.py)
    problems = [f"{origins.get(path_, 'config')}: {path_}: {why} is not allowed" for path_, why in line_breaks(settings)]
    for path_, reason in settings.reference_problems():
        source = owner.get(str(path_[0]))
        if path_[0] == "numbers" and len(path_) > 1 and str(path_[1]) in number_docs:
            source = number_docs[str(path_[1])]
        where = source.where(path_) if source else origins.get(".".join(map(str, path_)), "config")
        problems.append(f"{where}: {reason}")
    if problems:
        raise ConfigError("\n".join(problems))
    return LoadedConfig(settings, config_dir, origins)


def _load_plan(config_dir: Path, name: str, named_in: Document | None, origins: dict[str, str]) -> Document:
    """``config/plans/<name>.yaml``, validated on its own so that errors name its lines."""
    path = config_dir / "plans" / f"{name}.yaml"
    if not re.fullmatch(NAME, name) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in (config_dir / "plans").glob("*.yaml"))) or "none"
        where = named_in.where(("plan",)) if named_in else origins.get("plan", "config")
        raise ConfigError(f"{where}: number plan {name!r} not found in {config_dir / 'plans'} (there: {known})")
    try:
        doc = load(path)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    try:
        NumberPlan.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(str(pydantic_errors(doc, exc))) from None
    return doc


def _explain(exc: ValidationError, owner: dict[str, Document], origins: dict[str, str]) -> str:
    lines: list[str] = []
    for err in exc.errors():
        loc = err["loc"]
        if loc and loc[0] in owner:
            doc = owner[loc[0]]
            lines.extend(str(e) for e in pydantic_errors(doc, _OneError(dict(err))).errors)
            continue
        dotted = ".".join(str(p) for p in loc)
        where = origins.get(dotted, "config")
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {dotted + ': ' if dotted else ''}{msg}")
    return "\n".join(lines)


class _OneError:
    def __init__(self, err: dict[str, Any]):
        self._err = dict(err, msg=err["msg"].removeprefix("Value error, "))

    def errors(self) -> list[dict[str, Any]]:
        return [self._err]


def state_dir() -> Path:
    """Local state and caches (test bed rootfs, record spool); ``IVR_STATE_DIR`` overrides."""
    base = os.environ.get("IVR_STATE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ivr12345"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def audit_log_path(environ: Mapping[str, str] | None = None) -> Path:
    """The audit log (tickets/audit.py) the CLI and the console share: ``IVR_AUDIT_LOG``, else
    ``audit/unmasked.jsonl`` in the state directory."""
    environ = os.environ if environ is None else environ
    configured = environ.get("IVR_AUDIT_LOG")
    return Path(configured) if configured else state_dir() / "audit" / "unmasked.jsonl"


def agent_secret(agent: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An agent phone's SIP password, from ``IVR_AGENT_SECRET_<AGENT>`` (dashes as underscores)."""
    environ = os.environ if environ is None else environ
    return environ.get(agent_secret_variable(agent))


def webhook_secret_variable(endpoint: str) -> str:
    """Where a department webhook's HMAC key comes from: ``IVR_WEBHOOK_SECRET_<ENDPOINT>``."""
    return "IVR_WEBHOOK_SECRET_" + endpoint.upper().replace("-", "_")


def webhook_secret(endpoint: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A department webhook's HMAC key (never kept in config/)."""
    environ = os.environ if environ is None else environ
    return environ.get(webhook_secret_variable(endpoint))


CALLER_KEY_VARIABLE = "IVR_CALLER_KEY"
MIN_CALLER_KEY = 16  # characters: the key, not the phone number, is what a dump's reader must guess


def caller_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key of caller digests in Redis (:func:`ivr.store.keyspace.caller_digest`), from
    ``IVR_CALLER_KEY``; the same on every engine sharing one Redis. None when unset."""
    environ = os.environ if environ is None else environ
    value = environ.get(CALLER_KEY_VARIABLE, "")
    if not value:
        return None
    if len(value) < MIN_CALLER_KEY:
        raise ConfigError(f"{CALLER_KEY_VARIABLE} is too short: use at least {MIN_CALLER_KEY} random characters "
                          "(e.g. `openssl rand -base64 32`)")
    return value.encode()


def require_caller_key(environ: Mapping[str, str] | None = None) -> bytes:
    """:func:`caller_key`, or a ConfigError saying how to set it."""
    key = caller_key(environ)
    if key is None:
        raise ConfigError(f"missing caller key: set {CALLER_KEY_VARIABLE} (at least {MIN_CALLER_KEY} random "
                          "characters, the same on every engine sharing Redis; never kept in config/)")
    return key
