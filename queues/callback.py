"""Queued callback (排队回拨), the policy: one pending callback per number, bounded attempts.

A caller who pressed the callback key has hung up; their place is kept by a stand-in that
waits in the queue (the dialplan's ``[ivr-callback-queue]``). When a seat takes the stand-in,
the citizen is called; if they do not answer, the next attempt waits ``retry_after`` seconds and
joins at the same place again (it has waited longest), until ``attempts`` have been made.

Each attempt is one leg on the ticket: the number dialed, the seat, when, the dial status, and
whether the citizen answered. A request that cannot be honoured (a number that may not be
called back, a queue without callbacks) is refused at once: nothing waits, nothing is pending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Mapping

from pydantic import Field

from ivr.core.callerid import CallerSettings, is_callable
from ivr.core.strict import NAME, Strict
from queues.model import Callback, Queue

PENDING, PLACED, ANSWERED, FAILED, REFUSED = "pending", "placed", "answered", "failed", "refused"
NOT_CALLABLE = "号码不在可回拨范围（callers.callable）"
NO_CALLBACK = "该队列不提供回拨"
# An attempt the node could not start (Asterisk refused the stand-in: its calls are at ``maxcalls``).
# It is a leg on the ticket, but it does not use up an attempt: ``attempts`` counts the citizen's
# chances to answer, and a busy node is not the citizen's doing. Bounded by ``BUSY_TRIES`` so that
# a node that never takes the stand-in does not keep the request forever.
NODE_BUSY = "NODE_BUSY"
NODE_BUSY_TEXT = "节点繁忙，稍后重拨"
BUSY_TRIES = 30
BUSY_GIVEN_UP = "节点持续繁忙，回拨未能发出"
# The ActionID of the worker's Originates (a random token follows): its OriginateResponse names it,
# and the engine's AMI event filter passes that event for these only (ivr/asterisk_conf/manager.py).
ACTION_PREFIX = "ivr-callback-"


@dataclass
class CallbackRequest:
    """One citizen to call back, as kept in Redis (the engine that places it may be another)."""

    linkedid: str  # the ticket's call
    number: str
    queue: str
    queued_at: str  # when the call first joined a queue (its place in time order)
    priority: int = 0
    # one leg per attempt: {"attempt", "at", "number" (dialed; "" if never), "agent", "result", "answered", "ended"}
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: str = PENDING
    next_at: float = 0.0  # epoch s the next stand-in is placed
    reason: str = ""  # why it was refused or given up
    max_attempts: int = 0  # 0: the queue's ``callback.attempts``; else set by the request's origin (a node lost)
    line: str = ""  # the number the citizen first dialed: its recording rule and notice apply to the callback
    matter: str = ""  # the request type the IVR set ("": none): a matter never recorded stays unrecorded

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CallbackRequest":
        return cls(**data)

    @property
    def attempt(self) -> int:
        """The attempt being made (or next to make), from 1."""
        return 1 + sum(1 for leg in self.attempts if leg.get("result"))

    def open_leg(self) -> dict[str, Any] | None:
        """The leg being dialed (a seat took the stand-in, no result yet)."""
        return self.attempts[-1] if self.attempts and not self.attempts[-1].get("result") else None


def refusal(callers: CallerSettings, callback_queues: frozenset[str], number: str, queue: str) -> str:
    """Why a request for ``number`` in ``queue`` cannot be honoured ("" when it can)."""
    if not is_callable(callers, number):
        return NOT_CALLABLE
    return "" if queue in callback_queues else NO_CALLBACK


def callback_queues(queues: Mapping[str, Queue]) -> frozenset[str]:
    return frozenset(name for name, q in queues.items() if q.callback)


def placed(request: CallbackRequest) -> None:
    request.status = PLACED


def dialing(request: CallbackRequest, number: str, agent: str, at: float) -> None:
    """A seat took the stand-in and the citizen's ``number`` is dialed: the attempt's leg."""
    if request.open_leg() is None:
        request.attempts.append({"attempt": request.attempt, "at": at, "number": number, "agent": agent,
                                 "result": "", "answered": False})


def answered(request: CallbackRequest) -> None:
    leg = request.open_leg()
    if leg is not None:
        leg["answered"] = True


def result(request: CallbackRequest, dial_status: str, agent: str, at: float, policy: Callback) -> None:
    """One attempt ended: answered (done), or the next attempt is due, or the callback failed.
    An attempt that never dialed (the stand-in gave up, the result was lost) is a leg too,
    with no number."""
    leg = request.open_leg()
    if leg is None:
        leg = {"attempt": request.attempt, "at": at, "number": "", "agent": agent, "answered": False}
        request.attempts.append(leg)
    leg.update(result=dial_status, agent=leg.get("agent") or agent, ended=at,
               answered=bool(leg.get("answered")) or dial_status == "ANSWER")
    busy = sum(1 for a in request.attempts if a.get("result") == NODE_BUSY)
    if dial_status == NODE_BUSY:
        leg["reason"] = NODE_BUSY_TEXT
    if dial_status == "ANSWER":
        request.status = ANSWERED
    elif len(request.attempts) - busy >= (request.max_attempts or policy.attempts):
        request.status = FAILED
    elif busy >= BUSY_TRIES:
        request.status, request.reason = FAILED, BUSY_GIVEN_UP
    else:
        request.status, request.next_at = PENDING, at + policy.retry_after


class NodeLossCallbacks(Strict):
    """Who is called back when the Asterisk node carrying their call dies (docs/cluster.md, "When a
    node dies"): the hotline calls them, they need not call again and wait from the start."""

    ivr: bool = Field(True, description="callers who were in the menus")
    waiting: bool = Field(True, description="callers who were waiting in a queue")
    talking: bool = Field(False, description="callers who were talking to a seat (the seat has the ticket and "
                          "may call back itself)")
    queue: str = Field("general", pattern=f"^{NAME}$", description="the queue whose seats take the callbacks "
                       "(it must offer callbacks: its ``callback`` says how the number is dialed)")
    delay: int = Field(30, ge=0, le=86_400, description="seconds after the node is declared gone before the first "
                       "attempt (the caller may still be on the line to their carrier, and redial by themselves)")
    attempts: int | None = Field(None, ge=1, le=10, description="calls to the citizen; default: the queue's callback attempts")

    def wants(self, place: str) -> bool:
        """Whether a caller who was at ``place`` (``ivr``, ``waiting``, ``talking``) is called back."""
        return bool({"ivr": self.ivr, "waiting": self.waiting, "talking": self.talking}.get(place, False))


class CallbackSettings(Strict):
    """``callbacks:`` in config/: callbacks the platform schedules by itself (a caller's own request
    is the queue's ``callback``)."""

    node_loss: NodeLossCallbacks = NodeLossCallbacks()
    headroom: int = Field(10, ge=0, le=100_000, description="calls of a node kept free for citizens dialing in: "
                          "a callback's stand-in (two calls) is placed only while the node's calls plus two stay "
                          "within its maxcalls minus this")


def stand_in_room(maxcalls: int | None, headroom: int, in_use: int) -> int | None:
    """How many stand-ins a node may start now (None: no cap, Asterisk has no ``maxcalls``). Each
    takes two of the node's calls (both halves of its Local channel run the dialplan) and
    ``headroom`` calls stay free for citizens, so a burst of callbacks (a lost node's, all due
    together) never takes the last slots from callers dialing in; the rest wait for room."""
    if maxcalls is None:
        return None
    return max(0, (maxcalls - headroom - in_use) // 2)


def node_loss_request(rules: NodeLossCallbacks, linkedid: str, number: str, queued_at: float, priority: int,
                      now: float, line: str = "", matter: str = "") -> CallbackRequest:
    """The callback of a caller whose node died: pending, first attempt ``rules.delay`` from now, in
    the policy's queue at the place in time order the caller had (``queued_at``), recorded by the
    rule of the ``line`` they dialed."""
    return CallbackRequest(linkedid=linkedid, number=number, queue=rules.queue, queued_at=f"{queued_at:.6f}",
                           priority=priority, next_at=now + rules.delay, max_attempts=rules.attempts or 0,
                           line=line, matter=matter)


def refused(request: CallbackRequest, reason: str) -> None:
    """Not honoured, now or later (the queue lost its callback, the number is not callable)."""
    request.status, request.reason = REFUSED, reason


def ticket_view(request: CallbackRequest) -> dict[str, Any]:
    """What the ticket says of its callback (the number stays the caller's: masked by role)."""
    return {"queue": request.queue, "number": request.number, "status": request.status,
            "attempts": [dict(a) for a in request.attempts], **({"reason": request.reason} if request.reason else {})}


def leg_time(at: Any) -> str:
    """A callback leg's time (epoch seconds) as the local clock, ``10:00:05``."""
    return datetime.fromtimestamp(float(at)).astimezone().strftime("%H:%M:%S") if at else "?"


def leg_text(leg: Mapping[str, Any]) -> str:
    """``callback leg 1: 139****0001 by agent1001 at 10:00:05: ANSWER, answered`` (a leg that
    never dialed: ``no number dialed``)."""
    at = leg_time(leg.get("at"))
    text = f"callback leg {leg.get('attempt', '?')}: " + (str(leg["number"]) if leg.get("number") else "no number dialed")
    text += (f" by {leg['agent']}" if leg.get("agent") else "") + f" at {at}: {leg.get('result') or 'dialing'}"
    text += f" ({leg['reason']})" if leg.get("reason") else ""
    return text + (", answered" if leg.get("answered") else "")
