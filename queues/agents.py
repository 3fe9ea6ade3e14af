"""Who is at which seat, from Asterisk's own word: a pure state machine over queue-member facts.

Asterisk's app_queue is the truth about membership (an agent logged in is a dynamic member of
each queue of their skills), pauses and device state; it says so in ``QueueMember*`` events and,
after any reconnect or restart, in the ``QueueMember`` rows of a ``QueueStatus``. The board keeps
one :class:`Seat` per agent and reports which seats changed, so the adapter
(:mod:`ivr.follow`) writes only those. Wrap-up (后处理) is not an event: a seat is in wrap-up
while ``last call + wrap-up time`` lies ahead, so :meth:`Seat.state` is computed when read.
The wrap-up time is the member's own ``Wrapuptime`` if it has one, else its queue's (app_queue's
rule): our members have none, so the board is told each queue's (``wrapups``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ivr.core.convert import to_float, to_int

Facts = Mapping[str, str]
# AgentConnect/AgentComplete: the member of *this* node is in a call or not (a QueueMemberStatus
# need not come when app_queue's InCall turns on, and the shared device state is in use on every node)
CALL_EVENTS = frozenset({"AgentConnect", "AgentComplete"})
MEMBER_EVENTS = frozenset({"QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
                           *CALL_EVENTS})
# Asterisk's device states (AST_DEVICE_*), as QueueMember* events number them
_RINGING = {"6", "7"}
_UNREACHABLE = {"4", "5"}  # invalid, unavailable: logged in, but the phone is gone
STATES = ("logged_out", "available", "ringing", "talking", "wrapup", "paused", "unreachable")


@dataclass
class Membership:
    """One agent in one queue."""

    penalty: int = 0
    paused: bool = False
    reason: str = ""
    device: str = "1"
    in_call: bool = False
    last_call: float = 0.0  # epoch seconds the last call ended (Asterisk's LastCall)
    wrapup: int = 0
    calls: int = 0
    login: float = 0.0


@dataclass
class Seat:
    """An agent as the board knows them; ``queues`` empty means logged out."""

    agent: str
    queues: dict[str, Membership] = field(default_factory=dict)
    since: float = 0.0  # when the last fact about this seat arrived

    def state(self, now: float) -> str:
        """One word for a wallboard: paused beats talking (a pause mid-call takes effect after)."""
        if not self.queues:
            return "logged_out"
        members = list(self.queues.values())
        if any(m.in_call or m.device in ("2", "3", "8") for m in members):
            return "talking"
        if any(m.device in _RINGING for m in members):
            return "ringing"
        if all(m.paused for m in members):
            return "paused"
        if all(m.device in _UNREACHABLE for m in members):
            return "unreachable"
        if self.wrapup_left(now) > 0:
            return "wrapup"
        return "available"

    def wrapup_left(self, now: float) -> float:
        """Seconds of wrap-up still ahead (0 if none): when a page must look at the seat again,
        since app_queue says nothing when a wrap-up ends."""
        return max([m.last_call + m.wrapup - now for m in self.queues.values() if m.last_call] + [0.0])

    def to_json(self, now: float) -> dict[str, Any]:
        reasons = {m.reason for m in self.queues.values() if m.paused and m.reason}
        state = self.state(now)
        return {
            "agent": self.agent,
            "state": state,
            "wrapup_left": round(self.wrapup_left(now), 1) if state == "wrapup" else 0.0,
            "reason": ",".join(sorted(reasons)),
            "since": self.since,
            "queues": {q: {"penalty": m.penalty, "paused": m.paused, "reason": m.reason, "device": m.device,
                           "in_call": m.in_call, "last_call": m.last_call, "wrapup": m.wrapup, "calls": m.calls,
                           "login": m.login}
                       for q, m in sorted(self.queues.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Seat":
        return cls(agent=str(data["agent"]), since=float(data.get("since", 0)),
                   queues={q: Membership(**m) for q, m in (data.get("queues") or {}).items()})


def agent_of(facts: Facts) -> str:
    """The agent of a member row: its interface ``PJSIP/agent1001`` (events: Interface; QueueStatus: Location)."""
    interface = facts.get("Interface") or facts.get("Location") or facts.get("StateInterface") or ""
    return interface.split("/", 1)[-1]


def _membership(facts: Facts, queue_wrapup: int) -> Membership:
    """A member row; its wrap-up is the member's own ``Wrapuptime``, else ``queue_wrapup``."""
    return Membership(
        penalty=to_int(facts.get("Penalty")),
        paused=facts.get("Paused") == "1",
        reason=facts.get("PausedReason", "") if facts.get("Paused") == "1" else "",
        device=facts.get("Status", "1") or "1",
        in_call=facts.get("InCall") == "1",
        last_call=to_float(facts.get("LastCall")),
        wrapup=to_int(facts.get("Wrapuptime")) or queue_wrapup,
        calls=to_int(facts.get("CallsTaken")),
        login=to_float(facts.get("LoginTime")),
    )


def _still_in_call(before: Membership | None, fresh: Membership) -> Membership:
    """``fresh`` (an event's or QueueStatus' row), still in the call AgentConnect began unless
    app_queue ended it (LastCall moved): its InCall is not reliably 1 while the call lasts."""
    if before is not None and before.in_call and not fresh.in_call and fresh.last_call <= before.last_call:
        return dataclasses.replace(fresh, in_call=True)
    return fresh


class AgentBoard:
    """Seats of the configured agents; ``queue_name`` maps Asterisk's queue (``q-general``) to
    the configured one, and members that are not configured agents are ignored. ``wrapups``:
    each configured queue's wrap-up seconds (app_queue's ``wrapuptime``)."""

    def __init__(self, agents: Iterable[str], queue_name: Any = lambda q: q, wrapups: Mapping[str, int] | None = None):
        self.queue_name = queue_name
        self.wrapups = dict(wrapups or {})
        self.seats: dict[str, Seat] = {a: Seat(a) for a in agents}

    def handle(self, event: Facts, now: float) -> list[Seat]:
        """A ``QueueMember*`` event; returns the seats it changed."""
        seat = self.seats.get(agent_of(event))
        if seat is None:
            return []
        queue = self.queue_name(event.get("Queue", ""))
        if event.get("Event") in CALL_EVENTS:
            member = seat.queues.get(queue)
            if member is None:
                return []
            seat.queues[queue] = dataclasses.replace(member, in_call=event.get("Event") == "AgentConnect")
        elif event.get("Event") == "QueueMemberRemoved":
            seat.queues.pop(queue, None)
        else:
            seat.queues[queue] = _still_in_call(seat.queues.get(queue), _membership(event, self.wrapups.get(queue, 0)))
        seat.since = now
        return [seat]

    def reconcile(self, rows: Iterable[Facts], now: float) -> list[Seat]:
        """Replace what is known with a ``QueueStatus`` snapshot (its ``QueueMember`` rows);
        returns every seat whose membership differs from before."""
        fresh: dict[str, dict[str, Membership]] = {a: {} for a in self.seats}
        for row in rows:
            agent = agent_of(row)
            if agent in fresh:
                queue = self.queue_name(row.get("Queue", ""))
                fresh[agent][queue] = _still_in_call(self.seats[agent].queues.get(queue),
                                                     _membership(row, self.wrapups.get(queue, 0)))
        changed = []
        for agent, queues in fresh.items():
            seat = self.seats[agent]
            if seat.queues != queues:
                seat.queues, seat.since = queues, now
                changed.append(seat)
        return changed

    def set_agents(self, agents: Iterable[str], wrapups: Mapping[str, int] | None = None) -> None:
        """After a reload: new agents start logged out; removed ones are forgotten."""
        if wrapups is not None:
            self.wrapups = dict(wrapups)
        names = list(agents)
        self.seats = {a: self.seats.get(a) or Seat(a) for a in names}


# Which node's view of a seat the wallboard shows when nodes differ: the busiest one (a seat
# talking on A is "talking" though B holds it paused in 后处理 meanwhile).
_RANK = ("talking", "ringing", "wrapup", "available", "paused", "unreachable", "logged_out")


def compose(views: Mapping[str, Mapping[str, Any]], now: float) -> dict[str, Any]:
    """One seat from every node's view of it (node → its ``Seat.to_json``): the busiest view,
    with ``node`` (where it talks or rings; "" otherwise) and ``nodes`` (each node's state)."""
    states = {node: Seat.from_json(view).state(now) for node, view in views.items()}
    # a seat's device state is shared, so every node may say "talking": the node whose queue
    # member is in the call holds it (the desk's transfer goes there: transfer/where.py)
    node = min(sorted(states), key=lambda n: (_RANK.index(states[n]), not _in_call(views[n])))
    chosen = dict(views[node], state=states[node])
    chosen["wrapup_left"] = round(Seat.from_json(views[node]).wrapup_left(now), 1) if states[node] == "wrapup" else 0.0
    chosen["node"] = node if states[node] in ("talking", "ringing") else ""
    chosen["nodes"] = dict(sorted(states.items()))
    return chosen


def _in_call(view: Mapping[str, Any]) -> bool:
    return any(bool(m.get("in_call")) for m in (view.get("queues") or {}).values())


# How the CLI table, the desk and the wallboard name each seat state, in Mandarin.
STATE_LABELS = {
    "logged_out": "未签入", "available": "空闲", "ringing": "振铃", "talking": "通话中",
    "wrapup": "后处理", "paused": "暂停", "unreachable": "话机离线",
}
