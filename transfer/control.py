"""Transfers of a call in progress, decided by the hotline: what an agent or the engine may hand
a call to, and which of the call's channels moves.

Hotline logic only: the AMI adapter that carries a decision out is :mod:`transfer.ami`; the
dialplan that dials a target is generated from :func:`targets` (``ivr.asterisk_conf``), so the
softphone, the engine and the console reach exactly the same targets the same way (result and
the truthful fallback in ``[ivr-route] transfer``, recorded on the ticket).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Literal, Mapping

from ivr.core.calendar import HolidayCalendar
from ivr.core.channel import endpoint_of
from transfer.hours import open_subcenter
from transfer.model import EMERGENCY_NUMBERS, TransferRoute, emergency_route

if TYPE_CHECKING:  # annotations only: the domain takes the settings it is given
    from ivr.config import Settings

TargetKind = Literal["subcenter", "emergency", "platform"]
Method = Literal["blind", "attended", "redirect", "bridge"]
# The dialplan contexts the targets are rendered into (asterisk-conf/extensions.conf).
TRANSFERS_CONTEXT = "ivr-transfers"  # the engine's blind transfers and redirects
BRIDGE_CONTEXT = "ivr-bridge"  # three-party bridges (三方通话) with an emergency line


class TransferError(Exception):
    """A transfer that cannot be made, said plainly (unknown target, no such call, refused)."""


@dataclass(frozen=True)
class Target:
    """Somewhere a call may be handed: its extension in the transfer contexts (the dialed number,
    or a platform's name), what it is, and the route that dials it."""

    extension: str
    title: str
    kind: TargetKind
    route: TransferRoute


def targets(s: Settings) -> dict[str, Target]:
    """Every transfer target of this deployment, by extension: the plan's sub-center numbers,
    the emergency numbers (over the emergency trunk), the other platforms (by name)."""
    out: dict[str, Target] = {}
    for number, entry in s.numbers.items():
        sub = s.subcenters.get(entry.subcenter or "") if entry.mode == "subcenter" else None
        if sub is not None:
            route = TransferRoute(entry.subcenter or "", sub.number, sub.ring_timeout, sub.fallback_queue)
            out[number] = Target(number, sub.title, "subcenter", route)
    for number in sorted(EMERGENCY_NUMBERS):
        out[number] = Target(number, "应急联动", "emergency", emergency_route(number, s.emergency))
    for name, p in s.platforms.items():
        out[name] = Target(name, p.title, "platform", TransferRoute(name, p.number, p.ring_timeout, p.fallback_queue))
    return out


def resolve(s: Settings, text: str) -> Target:
    """A target as an operator names it: a number (``12360``, ``110``), a sub-center's name
    (``customs``) or a platform's (``province``)."""
    known = targets(s)
    key = text.strip()
    if key in known:
        return known[key]
    by_name = [t for t in known.values() if t.kind == "subcenter" and t.route.trunk == key]
    if by_name:
        return by_name[0]
    raise TransferError(f"unknown transfer target {text!r} (known: {', '.join(sorted(known))})")


def refuse_closed(target: Target, s: Settings, now: datetime, calendar: HolidayCalendar) -> None:
    """TransferError for a sub-center outside its ``hours:`` (it is not dialed then, as the IVR's
    own transfers are not): the engine, ``ivr transfer`` and the desk refuse the same way."""
    if target.kind != "subcenter" or not open_subcenter(target.route, s.subcenters, now, calendar).closed:
        return
    hours = s.subcenters[target.route.trunk].hours
    when = f" (hours: {hours.day} {hours.time})" if hours is not None else ""
    raise TransferError(f"sub-center {target.route.trunk} ({target.extension}) is closed now{when}: "
                        "not dialed; keep the caller or offer a callback")


@dataclass(frozen=True)
class Leg:
    """One channel of a call as Asterisk lists it (AMI ``Status``)."""

    channel: str
    uniqueid: str
    linkedid: str
    endpoint: str
    bridged: bool

    @classmethod
    def from_event(cls, e: Mapping[str, str]) -> "Leg":
        channel = e.get("Channel", "")
        return cls(channel, e.get("Uniqueid", ""), e.get("Linkedid", ""), endpoint_of(channel),
                   bool(e.get("BridgeID") or e.get("BridgeId")))


@dataclass(frozen=True)
class Move:
    """How the call moves: ``blind``: the agent's channel is blind-transferred (the caller leaves
    the agent, app_queue counts the talk as ended by a transfer); ``attended``: the agent's
    channel starts the features' atxfer (the agent consults the target while the caller hears
    music, and completes by hanging up, as with the softphone's ``*2``); ``redirect``: the caller's own
    channel is sent on (a call not talking to an agent); ``bridge``: caller and agent go into a
    three-party bridge together (``extra`` is the agent's channel)."""

    method: Method
    channel: str
    linkedid: str
    extra: str = ""
    agent: str = ""


def find_call(legs: Iterable[Leg], call: str, agents: Iterable[str]) -> tuple[str, list[Leg]]:
    """The call's linkedid and its legs; ``call`` is a linkedid, or an agent whose talking
    channel names the call."""
    legs = list(legs)
    if call in set(agents):
        mine = [leg for leg in legs if leg.endpoint == call and leg.bridged]
        if not mine:
            raise TransferError(f"agent {call} is not talking to a caller")
        call = mine[0].linkedid
    of_call = [leg for leg in legs if leg.linkedid == call]
    if not of_call:
        raise TransferError(f"no call {call} is up")
    return call, of_call


def plan_move(linkedid: str, legs: list[Leg], agents: Iterable[str], *, three_party: bool = False,
              attended: bool = False) -> Move:
    """Which channel the AMI action moves (see :class:`Move`)."""
    if three_party and attended:
        raise TransferError("a transfer is either attended or three-party, not both")
    caller = next((leg for leg in legs if leg.uniqueid == linkedid), None)
    if caller is None:
        raise TransferError(f"the caller of call {linkedid} has hung up")
    names = set(agents)
    agent = next((leg for leg in legs if leg.endpoint in names and leg.bridged), None)
    if three_party:
        if agent is None:
            raise TransferError(f"call {linkedid} is not talking to an agent: a three-party bridge needs one")
        return Move("bridge", caller.channel, linkedid, extra=agent.channel, agent=agent.endpoint)
    if attended:
        if agent is None:
            raise TransferError(f"call {linkedid} is not talking to an agent: an attended transfer needs one")
        return Move("attended", agent.channel, linkedid, agent=agent.endpoint)
    if agent is not None:
        return Move("blind", agent.channel, linkedid, agent=agent.endpoint)
    return Move("redirect", caller.channel, linkedid)


@dataclass(frozen=True)
class TransferResult:
    """What the engine did: Asterisk accepted the move, and the call is on its way to ``number``
    over ``trunk``. Whether the target answered is the dialplan's to find out: it lands on the
    ticket (``transfers``: result, SIP cause, where the caller went) like every transfer."""

    linkedid: str
    ticket: str  # the ticket's number ("" when the ticket is not stored yet)
    target: str  # the extension: the number dialed or a platform's name
    kind: TargetKind
    number: str
    trunk: str
    method: Method
    agent: str = ""  # the agent who had the call (blind, attended, bridge)

    @property
    def three_party(self) -> bool:
        return self.method == "bridge"

    def to_json(self) -> dict[str, object]:
        return {**vars(self), "three_party": self.three_party}


def closed_variable(subcenter: str) -> str:
    """The Asterisk global saying whether ``subcenter`` is closed now (1/0; empty: never published).
    Here, next to the transfer contexts, because both the dialplan renderer and the engine's
    publisher (:mod:`transfer.ami`) must spell it the same way."""
    return "IVR_SUBCENTER_CLOSED_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in subcenter.upper())
