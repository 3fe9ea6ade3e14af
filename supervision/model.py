"""Who may be called to supervise, the three modes, and the one request the engine sends.

A request names three things, each checked here against the configuration before anything
reaches Asterisk: a configured agent, a configured supervisor phone and one of three fixed mode
words. Nothing else from the request (a form field, a command line) goes into the Originate:
the extension is ``<mode>-<agent>`` of the generated ``[ivr-supervise]`` context
(ivr/asterisk_conf/supervision.py), whose ChanSpy options the mode alone chooses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Collection, Literal, Mapping

from pydantic import Field

from ivr.core.conftext import SipUri, Title
from ivr.core.strict import NAME, Strict

__all__ = ["CONTEXT", "MESSAGES", "MODES", "Mode", "SupervisionError", "SupervisionRequest", "SupervisionSettings", "Supervisor",
           "check_phone_owner", "check_request", "choices", "extension", "name_problems", "own_phone", "phones_for"]

Mode = Literal["listen", "whisper", "barge"]
CONTEXT = "ivr-supervise"  # the generated context the Originate lands in (nothing else reaches it)
# ChanSpy's options per mode (Asterisk 22 apps/app_chanspy.c): q no beep or name read out,
# w the supervisor talks to the spied channel (the agent) only, B to the agent and the peer
# bridged with it (the citizen); listen writes nothing into the call.
MODES: dict[str, tuple[str, str]] = {"listen": ("q", "监听"), "whisper": ("qw", "耳语"), "barge": ("qB", "强插")}

# what a plain form is told back (the page shows the text of a fixed code, never the request's own)
MESSAGES = {"ok": "督导电话正在振铃，接听后即加入通话。", "failed": "未能发起督导，请重试（启用脚本后可看到原因）。"}


class Supervisor(Strict):
    """A supervisor's softphone: a PJSIP endpoint of its own (password ``IVR_SUPERVISOR_SECRET_<NAME>``)."""

    name: Title = Field(description="display name")
    contact: SipUri | None = Field(None, description="fixed SIP URI (desk phone); otherwise the softphone registers")
    user: str | None = Field(None, pattern=NAME, description="the console user whose own phone this is (their forms "
                             "default to it; other supervisors may not ring it); none: a shared phone")


class SupervisionSettings(Strict):
    supervisors: dict[str, Supervisor] = Field({}, description="supervisors' phones the engine may call to supervise")
    notify_agent: bool = Field(True, description="the agent's desk shows that a supervisor is on the call, and how")
    ring_timeout: int = Field(30, ge=5, le=120, description="seconds the supervisor's phone rings")


class SupervisionError(Exception):
    """The request was refused before anything was sent to Asterisk (or Asterisk refused it)."""


@dataclass(frozen=True)
class SupervisionRequest:
    agent: str
    mode: Mode
    supervisor: str

    @property
    def extension(self) -> str:
        return extension(self.mode, self.agent)

    @property
    def label(self) -> str:
        return MODES[self.mode][1]


def extension(mode: str, agent: str) -> str:
    return f"{mode}-{agent}"


def own_phone(user: str, supervisors: Mapping[str, Supervisor]) -> str | None:
    """The phone configured as ``user``'s own (``user:`` of a supervisor phone), if any."""
    return next((name for name, s in supervisors.items() if s.user == user), None)


def phones_for(user: str, role: str, supervisors: Mapping[str, Supervisor]) -> dict[str, str]:
    """The phones ``user`` may ring (name → title): an admin any; anyone else their own and the
    shared ones (bound to no user), never another supervisor's own phone."""
    return {n: s.name for n, s in supervisors.items() if role == "admin" or s.user in (None, user)}


def check_phone_owner(user: str, role: str, supervisor: str, supervisors: Mapping[str, Supervisor]) -> None:
    """SupervisionError when ``supervisor`` is another user's own phone and ``user`` is no admin:
    a supervisor rings their own phone (or a shared one), not a colleague's."""
    if supervisor not in phones_for(user, role, supervisors):
        raise SupervisionError(f"supervisor phone {_shown(supervisor)} is another user's own phone (only an admin may ring it)")


def choices(settings: SupervisionSettings, user: str = "", role: str = "admin") -> dict[str, Any]:
    """What the console's supervise forms offer ``user``: the phones they may ring (name → title),
    theirs first and chosen (``mine``), and the modes."""
    phones = phones_for(user, role, settings.supervisors)
    mine = own_phone(user, settings.supervisors) if user else None
    if mine in phones:
        phones = {mine: phones[mine], **{n: t for n, t in phones.items() if n != mine}}
    return {"phones": phones, "mine": mine, "modes": [(mode, label) for mode, (_options, label) in MODES.items()]}


def _shown(text: str) -> str:
    """A refused value as the error names it: cut, so a megabyte of injection stays out of logs."""
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def check_request(agent: str, mode: str, supervisor: str, agents: Collection[str],
                  supervisors: Mapping[str, Supervisor]) -> SupervisionRequest:
    """The request, when each part is exactly a configured name or mode; SupervisionError otherwise."""
    if mode not in MODES:
        raise SupervisionError(f"no such mode {_shown(mode)} (listen, whisper or barge)")
    if not re.fullmatch(NAME, agent) or agent not in agents:
        raise SupervisionError(f"no such agent {_shown(agent)}")
    if not re.fullmatch(NAME, supervisor) or supervisor not in supervisors:
        raise SupervisionError(f"no such supervisor phone {_shown(supervisor)}")
    return SupervisionRequest(agent, mode, supervisor)  # type: ignore[arg-type]


def name_problems(supervisors: Mapping[str, Supervisor], agents: Collection[str], taken: Collection[str]
                  ) -> list[tuple[tuple[str | int, ...], str]]:
    """Names that cannot work: a supervisor's endpoint named like an agent's or a trunk's, a
    console user given two phones of their own, and agents whose extensions Asterisk cannot tell
    apart (it ignores ``-`` in extension names, so ``listen-a-b`` and ``listen-ab`` are one extension)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    owners: dict[str, str] = {}
    for name, phone in supervisors.items():
        if not re.fullmatch(NAME, name):
            out.append((("supervision", "supervisors", name), f"name {name!r} must match {NAME}"))
        elif name in agents or name in taken:
            out.append((("supervision", "supervisors", name), f"{name!r} already names an agent or a trunk"))
        if phone.user is not None and phone.user in owners:
            out.append((("supervision", "supervisors", name, "user"), f"console user {phone.user!r} already has "
                        f"phone {owners[phone.user]!r}: one own phone per user"))
        elif phone.user is not None:
            owners[phone.user] = name
    if supervisors:
        seen: dict[str, str] = {}
        for agent in agents:
            key = agent.replace("-", "")
            if key in seen:
                out.append((("agents", agent), f"agents {seen[key]!r} and {agent!r} differ only by '-', which Asterisk "
                            "ignores in extensions: their supervision extensions would be one"))
            seen[key] = agent
    return out
