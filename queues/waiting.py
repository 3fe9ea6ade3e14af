"""What the wallboard and the agent desk show live, as plain data (pure: no Redis, no protocol).

The engine's live follower (:mod:`queues.follower`) turns AMI facts into two kinds of record, and the
console (:mod:`console.wallboard`, :mod:`console.desk`) reads them back; both sides agree here:

- a :class:`Waiting` caller: one channel waiting in one queue now (no caller number);
- a desk: the call offered to one agent (``offered``, from ``AgentCalled``, before the agent
  answers), then ``connected``, ``ended`` (wrap-up: the stub stays for the agent to finish the
  ticket) or ``missed`` (rung, not answered); with the ticket stub, the caller masked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ivr.core.convert import epoch_or_none
from ivr.core.masking import mask_number
from tickets.model import REQUEST_LABELS, RequestType, Ticket

DESK_STATES = ("offered", "connected", "ended", "missed")
DESK_TTL = 8 * 3600  # s a desk record lives: a shift; the next offer replaces it anyway
STALE_WAIT = 6 * 3600  # s: a "waiting" entry this old was left by an Asterisk no engine follows any more


@dataclass(frozen=True)
class Waiting:
    """A channel waiting in a queue (``uniqueid``: the caller's channel, or a callback's stand-in)."""

    uniqueid: str
    queue: str
    line: str  # the dialed line, when the engine follows the call ("" otherwise)
    joined: float  # epoch s
    asterisk: str  # which Asterisk it waits on (several may share one Redis)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def stale(self, now: float) -> bool:
        return now - self.joined > STALE_WAIT

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Waiting":
        return cls(str(data.get("uniqueid", "")), str(data.get("queue", "")), str(data.get("line", "")),
                   float(data.get("joined") or 0), str(data.get("asterisk", "")))


def request_label(kind: str) -> str:
    """``complaint`` → ``投诉`` ("" for none or an unknown word)."""
    try:
        return REQUEST_LABELS[RequestType(kind)] if kind else ""
    except ValueError:
        return ""


def desk_stub(ticket: Ticket | None, linkedid: str, queue: str, offered_at: float) -> dict[str, Any]:
    """The ticket stub an agent sees when the call is offered: line, IVR path, the request type
    the caller chose, the wait so far, earlier tickets of the caller; the caller masked (a
    desk is no place for an unmasked number). ``ticket``: the engine's copy (None when this
    engine does not follow the call: the console fills in from the stored ticket)."""
    stub: dict[str, Any] = {"linkedid": linkedid, "queue": queue, "offered_at": round(offered_at, 3)}
    if ticket is None:
        return stub
    queued = epoch_or_none(ticket.queued)
    stub.update({
        "number": ticket.number,
        "line": ticket.line,
        "line_title": ticket.line_title,
        "caller": mask_number(ticket.caller),
        "received": ticket.received,
        "ivr_flow": ticket.ivr.flow,
        "ivr_nodes": list(ticket.ivr.nodes),
        "ivr_keys": list(ticket.ivr.keys),
        "request_type": ticket.request_type,
        "request_type_source": ticket.request_type_source,
        "queued_at": queued,
        "wait_seconds": None if queued is None else round(max(0.0, offered_at - queued), 1),
        "repeat_of": list(ticket.repeat_of),
        "elderly": ticket.elderly,
        "priority": ticket.priority,
        "priority_reason": ticket.priority_reason,
    })
    return stub


@dataclass(frozen=True)
class Amend:
    """What an agent sets on a ticket from the desk; validated before it goes anywhere."""

    linkedid: str
    agent: str
    request_type: str  # a RequestType value ("" leaves it)
    department: str
    notes: str

    MAX_NOTES = 2000  # characters

    def to_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Amend":
        return cls(*(str(data.get(k, "")) for k in ("linkedid", "agent", "request_type", "department", "notes")))

    @classmethod
    def checked(cls, linkedid: str, agent: str, request_type: str, department: str, notes: str,
                departments: set[str]) -> "Amend":
        """ValueError (in Mandarin: it is shown on the desk) when a field is not acceptable."""
        kind = RequestType.parse(request_type).value if request_type.strip() else ""
        department = department.strip()
        if department and department not in departments:
            raise ValueError(f"未知的承办单位：{department}")
        notes = notes.strip()
        if len(notes) > cls.MAX_NOTES:
            raise ValueError(f"备注过长（最多 {cls.MAX_NOTES} 字）")
        return cls(linkedid, agent, kind, department, notes)

    def missing_from(self, ticket: Ticket) -> bool:
        """Whether ``ticket`` lacks something this amend sets (a write that lost it)."""
        return bool((self.request_type and ticket.request_type != self.request_type)
                    or (self.department and ticket.department != self.department)
                    or (self.notes and ticket.notes != self.notes))

    def apply(self, ticket: Ticket) -> None:
        """Set the fields on ``ticket`` (the engine's copy while the call is up, or the stored one)."""
        if self.request_type:
            ticket.request_type, ticket.request_type_source = self.request_type, "agent"
        ticket.department = self.department or ticket.department
        ticket.notes = self.notes or ticket.notes
