"""Seats and the queues callers wait in, as admins write them in ``config/queues.yaml``.

12345 promises 7×24 human service: the ``general`` queue must exist and is where every failure
goes. An agent serves every queue whose skill they have, with that skill's penalty (0 = rung
first), once logged in (from the softphone or through the engine): membership is dynamic, so a
seat that is not staffed is never rung. Rendered into Asterisk's queues.conf, the agents'
pjsip endpoints and the log-in feature codes by :mod:`ivr.asterisk_conf`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from ivr.core.conftext import FILE_PATH, MUSIC_CLASS, HostPort, IpPort, SipUri, Title
from ivr.core.hours import Hours
from ivr.core.ice import IceUrl, is_turn
from ivr.core.qualify import Qualify
from ivr.core.route import GENERAL_QUEUE, QueueRoute
from ivr.core.strict import Strict

__all__ = ["GENERAL_QUEUE", "Agent", "Announce", "Callback", "Hours", "PauseReasons", "PhoneProbe", "Phones", "WebPhones", "Queue",
           "QueueRoute", "TurnSecret", "Strategy", "memberships", "serving", "web_phone_problems"]

PauseReasons = dict[Annotated[str, StringConstraints(pattern=r"^[1-9]$")], Annotated[Title, StringConstraints(min_length=1, max_length=20)]]
"""A pause reason by the digit an agent keys after the pause code (``*73`` + digit)."""
Strategy = Literal["rrmemory", "ringall", "leastrecent", "fewestcalls", "random", "linear", "wrandom"]


class Agent(Strict):
    """A seat: one SIP softphone endpoint and the skills it answers."""

    name: Title = Field(description="display name")
    skills: dict[str, int] = Field(
        {GENERAL_QUEUE: 0},
        description="skill → penalty (0 rung first); a list means penalty 0 for each",
    )
    contact: SipUri | None = Field(
        None, description="fixed SIP URI (desk phone); otherwise the softphone registers"
    )
    phone: Literal["sip", "web"] = Field(
        "sip", description="sip: a SIP softphone or desk phone; web: the desk page's WebRTC phone (phones.web)"
    )

    @field_validator("skills", mode="before")
    @classmethod
    def _list_means_penalty_zero(cls, value: Any) -> Any:
        return {skill: 0 for skill in value} if isinstance(value, (list, tuple)) else value

    @field_validator("skills")
    @classmethod
    def _penalties(cls, value: dict[str, int]) -> dict[str, int]:
        for skill, penalty in value.items():
            if not 0 <= penalty <= 100:
                raise ValueError(f"skill {skill}: penalty {penalty} must be 0-100")
        return value


class PhoneProbe(Qualify):
    """The OPTIONS probe of agents' phones: a softphone that crashed or lost its network stops
    answering, Asterisk marks the seat unavailable, app_queue stops ringing it and the seat shows
    话机离线 until a probe is answered again. Without it a dead registered phone is rung until its
    registration expires."""

    every: int = Field(15, ge=0, le=300, description="seconds between probes; 0: phones are dialed blind")
    timeout: float = Field(3.0, ge=0.2, le=10.0, description="seconds a probe waits for its answer")
    fixed: bool = Field(True, description="also probe seats with a fixed contact (desk phones); false: only "
                        "registered softphones")

    def probes(self, contact: str | None) -> bool:
        """Whether the phone of a seat with this fixed ``contact`` (None: it registers) is probed."""
        return bool(self.every) and (contact is None or self.fixed)


class TurnSecret(Strict):
    """Where the secret shared with the TURN server (coturn's ``static-auth-secret``) is read:
    an environment variable of the console, or a file (its first line); never config/ itself."""

    env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]{0,63}$", description="an environment variable's name")
    file: Annotated[str, StringConstraints(pattern=FILE_PATH)] | None = Field(None, description="a file readable by the console")

    @model_validator(mode="after")
    def _one_source(self) -> "TurnSecret":
        if (self.env is None) == (self.file is None):
            raise ValueError("turn_secret names one source: {env: VARIABLE} or {file: /path}")
        return self


class WebPhones(Strict):
    """The desk page's WebRTC phone (agents with ``phone: web``): Asterisk's own HTTP server
    carries SIP over WebSocket on ``listen`` (loopback: the console's TLS proxy is in front in
    production, docs/console.md); the browser connects to ``url``. DTLS-SRTP uses the operator's
    certificate when ``dtls_cert`` and ``dtls_key`` are given, else one Asterisk makes at start."""

    listen: IpPort = Field("127.0.0.1:8088", description="Asterisk's HTTP server (http.conf bindaddr:bindport)")
    url: Annotated[str, StringConstraints(pattern=r"^wss?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._/-]*)?$")] = Field(
        "ws://127.0.0.1:8088/ws", description="the WebSocket URL the browser opens (wss://… behind TLS)")
    dtls_cert: Annotated[str, StringConstraints(pattern=FILE_PATH)] | None = Field(
        None, description="PEM certificate for DTLS (with dtls_key); none: generated when Asterisk starts")
    dtls_key: Annotated[str, StringConstraints(pattern=FILE_PATH)] | None = None
    ice_servers: tuple[IceUrl, ...] = Field(
        (), description="STUN/TURN servers the browser uses (stun:/turn:/turns: URLs, no credentials in them); none: "
        "browser and Asterisk reach each other directly")
    turn_secret: TurnSecret | None = Field(
        None, description="the TURN server's shared secret (coturn use-auth-secret), from which the console issues "
        "each sign-in's credentials; needed with a turn: server")
    turn_lifetime: int = Field(43200, ge=600, le=604800, description="seconds a sign-in's TURN credentials stay valid")
    asterisk_stun: HostPort | None = Field(
        None, description="rtp.conf stunaddr: the STUN server Asterisk asks for its public address (Asterisk behind NAT)")

    @model_validator(mode="after")
    def _both_or_neither(self) -> "WebPhones":
        if (self.dtls_cert is None) != (self.dtls_key is None):
            raise ValueError("dtls_cert and dtls_key go together (or neither: a generated certificate)")
        return self

    @model_validator(mode="after")
    def _turn_has_its_secret(self) -> "WebPhones":
        relays = any(is_turn(url) for url in self.ice_servers)
        if relays and self.turn_secret is None:
            raise ValueError("a turn: or turns: server needs turn_secret (the secret shared with the TURN server)")
        if self.turn_secret is not None and not relays:
            raise ValueError("turn_secret is set but ice_servers names no turn: or turns: server")
        return self


class Phones(Strict):
    """Agents' phones (``phones:`` in config/queues.yaml)."""

    qualify: PhoneProbe = PhoneProbe()
    web: WebPhones | None = Field(None, description="the desk page's WebRTC phone; none: no agent has one")


def web_phone_problems(name: str, agent: Agent, phones: Phones, *,
                       proxies_without_ws: list[str] | None = None) -> list[tuple[tuple[str, ...], str]]:
    """Why agent ``name``'s ``phone: web`` cannot be rendered (path under the config, reason).
    ``proxies_without_ws``: behind cluster proxies, those with no WebSocket listener."""
    if agent.phone != "web":
        return []
    where = ("agents", name, "phone")
    if phones.web is None:
        return [(where, "a web phone needs phones.web (the WebSocket Asterisk serves it on)")]
    if agent.contact:
        return [(where, "a web phone registers from the desk page: remove the fixed contact")]
    if proxies_without_ws:  # the phone registers at the proxies (the seat's lock is there), over WebSocket
        return [(where, "behind cluster proxies a web phone registers at their WebSocket listener: set ws on "
                 "every proxy (cluster.proxies.<name>.ws; missing on " + ", ".join(proxies_without_ws) + ")")]
    return []


class Announce(Strict):
    """Position and estimated-wait announcements while a caller waits (never to the caller at
    the head of the queue: the next seat is theirs)."""

    every: int = Field(30, ge=0, le=600, description="seconds between announcements; 0 = none")
    position: bool = True
    wait: bool = Field(True, description="also the estimated wait, from recent waits in this queue")


class Callback(Strict):
    """Queued callback (排队回拨): after ``after`` seconds a waiting caller is offered a callback;
    pressing ``key`` hangs up and keeps their place. When their turn comes the engine calls them
    back and connects them to the agent; ``attempts`` calls at most, ``retry_after`` apart."""

    after: int = Field(30, ge=0, le=3600, description="seconds waited before the offer (and the key) count")
    key: str = Field("1", pattern=r"^[0-9]$")
    attempts: int = Field(3, ge=1, le=10, description="calls to the citizen before the callback has failed")
    retry_after: int = Field(60, ge=5, le=3600, description="seconds between two attempts")
    ring: int = Field(30, ge=5, le=120, description="seconds the citizen's phone rings")


class Queue(Strict):
    """A group of seats callers wait for (7×24 general, or an expert skill)."""

    title: Title
    skill: str | None = Field(None, description="agents with this skill serve the queue; default: the queue's name")
    strategy: Strategy = "rrmemory"
    ring_timeout: int = Field(15, ge=1, le=120, description="seconds one seat rings")
    wrapup: int = Field(0, ge=0, le=600, description="seconds after a call before the seat is rung again (后处理)")
    music: str = Field("default", pattern=MUSIC_CLASS, description="music-on-hold class (musiconhold.conf)")
    announce: Announce = Announce()
    hours: Hours | None = Field(None, description="staffed hours; none: always (the general queue is 7×24)")
    max_wait: int = Field(0, ge=0, description="seconds in this queue before overflow; 0 = forever")
    overflow: str | None = Field(
        None, description="queue a call moves to after max_wait, outside hours or with no seat logged in"
    )
    callback: Callback | None = Field(None, description="offer waiting callers a callback; none: no offer")

    def skill_name(self, name: str) -> str:
        return self.skill or name

    def overflow_queue(self, name: str) -> str | None:
        """Where a call goes when this queue cannot serve it: never nowhere, except from general."""
        return self.overflow or (GENERAL_QUEUE if name != GENERAL_QUEUE else None)


def memberships(agent: Agent, queues: dict[str, Queue]) -> dict[str, int]:
    """The queues an agent joins when logging in, with the penalty of the matching skill."""
    return {name: agent.skills[q.skill_name(name)] for name, q in queues.items() if q.skill_name(name) in agent.skills}


def wrapups(queues: dict[str, Queue]) -> dict[str, int]:
    """Each queue's wrap-up seconds, for the seat board (queues.agents.AgentBoard)."""
    return {name: q.wrapup for name, q in queues.items()}


def serving(queue: str, agents: dict[str, Agent], queues: dict[str, Queue]) -> list[str]:
    """The agents who join ``queue`` when they log in."""
    return [name for name, agent in agents.items() if queue in memberships(agent, queues)]
