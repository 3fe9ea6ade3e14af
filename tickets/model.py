"""The ticket stub: one per call, built by the call tracker, stored as JSON.

A ticket is plain data. The tracker fills it from what Asterisk reports about the call and
what the engine recorded in the IVR; :func:`decide_disposition` turns that into the one word
a supervisor reads first. Caller numbers stay in full here (the handling staff call back);
every view for another role goes through :meth:`Ticket.view` with ``unmasked=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from ivr.core.masking import mask_number


class RequestType(StrEnum):
    """What the citizen wants (001 §8): the five kinds of request 12345 accepts."""

    CONSULT = "consult"
    HELP = "help"
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"

    @property
    def label(self) -> str:
        return REQUEST_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> "RequestType":
        """``投诉``, ``complaint`` or ``COMPLAINT``; ValueError names the accepted words."""
        kind = _REQUEST_NAMES.get(text.strip().lower())
        if kind is None:
            accepted = ", ".join(f"{k.label}/{k.value}" for k in cls)
            raise ValueError(f"unknown request type {text!r} (one of {accepted})")
        return kind


REQUEST_LABELS = {
    RequestType.CONSULT: "咨询",
    RequestType.HELP: "求助",
    RequestType.COMPLAINT: "投诉",
    RequestType.REPORT: "举报",
    RequestType.SUGGESTION: "建议",
}


_REQUEST_NAMES = {**{k.value: k for k in RequestType}, **{label: k for k, label in REQUEST_LABELS.items()}}


class Disposition(StrEnum):
    """How the call ended, as the supervisor and the departments read it."""

    ANSWERED = "answered"  # a seat took the call
    ABANDONED_IVR = "abandoned_ivr"  # the caller hung up before reaching a queue
    ABANDONED_QUEUE = "abandoned_queue"  # the caller hung up while waiting for a seat
    TRANSFERRED = "transferred"  # a sub-center (or another platform) answered
    TRANSFER_FAILED = "transfer_failed"  # the sub-center did not answer; see ``after_transfer``
    EMERGENCY_LINKED = "emergency_linked"  # 110/119/120/122 answered the linked call
    CALLBACK = "callback"  # the caller chose a callback and hung up; ``callback`` says how it went
    ERROR = "error"  # the platform failed the call (Asterisk restart, lost, …)
    NODE_LOST = "node_lost"  # the Asterisk node carrying the call died and did not come back (docs/cluster.md)


DISPOSITION_LABELS = {
    Disposition.ANSWERED: "已接听",
    Disposition.ABANDONED_IVR: "语音导航中放弃",
    Disposition.ABANDONED_QUEUE: "排队中放弃",
    Disposition.TRANSFERRED: "已转接",
    Disposition.TRANSFER_FAILED: "转接失败",
    Disposition.EMERGENCY_LINKED: "已联动应急",
    Disposition.CALLBACK: "预约回拨",
    Disposition.ERROR: "异常",
    Disposition.NODE_LOST: "节点故障中断",
}


CLOSED_STATUSES = frozenset({"closed"})
"""Workflow statuses that end a case (办结). The phone platform writes ``accepted`` (受理) and
learns of later steps only when the department workflow writes them back; until then a ticket
counts as open."""


@dataclass
class TimelineEntry:
    at: str  # ISO time
    event: str  # "received", "queue joined", "agent rung", …
    detail: str = ""


@dataclass
class AgentAttempt:
    agent: str
    rung_at: str
    ring_seconds: float | None = None
    answered: bool = False


@dataclass
class SeatCollision:
    """A seat this call's node rang while it was already taken on another node: the proxies'
    seat lock answered 486 at once (docs/cluster.md "Longest waiting caller across nodes").
    Not a ring the seat let go by: kept apart from ``agents_rung``."""

    agent: str
    at: str  # ISO time of app_queue's AgentRingNoAnswer


class VisitOutcome(StrEnum):
    """How one stay in one queue ended (the service-level counts are made of these)."""

    ANSWERED = "answered"  # an agent took the call in this queue
    ABANDONED = "abandoned"  # the caller hung up while waiting here
    OVERFLOWED = "overflowed"  # left without an answer and went on (the general queue, or the dialplan's next step)
    CALLBACK = "callback"  # the caller chose to be called back and hung up, keeping their place
    LOST = "lost"  # the platform lost the call while it waited (an Asterisk restart, a vanished call)
    NODE_LOST = "node_lost"  # its Asterisk node died while it waited (tracking/node_gone.py)


@dataclass
class QueueVisit:
    """One stay in one queue: an expert call that overflows into the general queue has two."""

    queue: str
    joined: str  # ISO time; "" when the join was not seen (picked up after a reconnect)
    left: str = ""  # ISO time; "" while waiting
    outcome: str = ""  # a VisitOutcome value; "" while waiting or just left (an answer may follow)
    wait_seconds: float | None = None  # joined → answered / left (Asterisk's HoldTime when the join was unseen)
    agent: str = ""


@dataclass
class Transfer:
    """One attempt to hand the call on: a sub-center, an emergency line, another platform."""

    kind: str  # "subcenter" | "emergency" | "blind" | "attended" | "platform"
    target: str  # trunk or endpoint ("tax"), or the transfer target's channel
    number: str  # what was dialed ("12366")
    at: str
    result: str = ""  # Asterisk's DIALSTATUS: ANSWER, BUSY, NOANSWER, CHANUNAVAIL, CONGESTION, …
    cause: str = ""  # SIP/Q.850 hang-up cause of the failed attempt ("17", "486 Busy Here")
    then: str = ""  # where the caller went next: "queue general", "hangup", …
    three_party: bool = False  # a three-party bridge (三方通话): caller, agent and the target together


@dataclass
class OutOfScope:
    """The caller was told the matter is not one 12345 accepts (不予受理), and where it belongs."""

    matter: str  # a config/outofscope.yaml name: litigation, arbitration, petition, …
    title: str  # 诉讼, 仲裁, 信访, …
    by: str  # "ivr" (a flow's out_of_scope node) or "agent" (the agent's feature key)
    at: str  # ISO time
    agent: str = ""


@dataclass
class Recording:
    """One recording of the call (recording/: MixMonitor on the caller's channel, stereo: the
    caller left, the seat right), kept as a file named by the ticket number."""

    file: str  # relative to recording.dir: 2026/12/06/20261206-12345-00017.opus
    mode: str = ""  # answer / start: when it began (recording/rules.py)
    stored: str = ""  # ISO time the compressed file was written
    seconds: float = 0.0  # talk recorded (from the raw file: exact to a frame)
    size: int = 0  # bytes of the kept file
    sha256: str = ""  # of the kept file: `ivr recordings verify` compares
    deleted: str = ""  # ISO time it was deleted ("" while kept)
    deleted_why: str = ""  # retention / purge by an operator
    source: str = ""  # the raw file it was made from (<linkedid>.<mode>): kept once, whatever crashes between
    failed: str = ""  # why a recorded call has no audio (file ""): disk-full / no-audio / no-inodes / not-writable / no-file
    expected: float = 0.0  # set when the file is cut short: the talk's seconds by the ticket (recording/rules.py)

    @property
    def incomplete(self) -> bool:
        """The file holds less than the call's talk (the disk filled during the call): 录音不完整."""
        return self.expected > 0


@dataclass
class QualityScore:
    """One quality inspection (质检) of the call's recording by a supervisor (quality/): the points
    per rubric item, their total; a re-score appends another, the latest counts."""

    by: str  # the console user who scored
    at: str  # ISO time
    scores: dict[str, int]  # rubric item → points
    total: int
    comment: str = ""
    rubric_version: str = ""  # quality.model.rubric_version of the rubric it was scored against


@dataclass
class Deadline:
    due: str  # ISO date (working days) or ISO time (crisis hours)
    rule: str  # "3 working days", "24 h (crisis)"
    provisional: bool = False  # the year's holiday calendar is not official yet


@dataclass
class IvrPath:
    flow: str = ""
    nodes: list[str] = field(default_factory=list)  # "main/menu", … as walked
    keys: list[str] = field(default_factory=list)  # menu keys only (collected digits stay in the call record)
    route: str = ""  # queue / transfer / hangup / fallback
    fallback: bool = False  # the dialplan routed the call without the engine
    error: str = ""


@dataclass
class Ticket:
    linkedid: str
    line: str  # the dialed number
    caller: str  # in full: mask with view(unmasked=False); digits and a leading + only (ivr/core/callerid.py)
    received: str  # ISO time
    number: str = ""  # assigned by the repository on first write (date-line-sequence)
    line_mode: str = ""  # main / merged / dual / subcenter
    line_title: str = ""
    status: str = "accepted"  # accepted (受理) → the workflow moves it on
    queued: str = ""
    answered: str = ""
    ended: str = ""
    ivr: IvrPath = field(default_factory=IvrPath)
    request_type: str = ""  # a RequestType value
    request_type_source: str = ""  # "ivr" (menu choice) or "agent"
    department: str = ""  # the department the agent assigns the case to (承办单位), from the desk
    notes: str = ""  # the agent's notes on the case (受理记录), from the desk
    skill: str = ""  # skill / department the call was routed to
    queue: str = ""  # the last queue the call was in (``queue_visits`` has them all)
    wait_seconds: float | None = None  # first queue join → answer (or the end of waiting): the caller's whole wait
    agent: str = ""
    queue_visits: list[QueueVisit] = field(default_factory=list)
    agents_rung: list[AgentAttempt] = field(default_factory=list)
    seat_collisions: list[SeatCollision] = field(default_factory=list)  # offers turned away: the seat was taken on another node
    talk_seconds: float | None = None
    transfers: list[Transfer] = field(default_factory=list)
    callback: dict[str, Any] | None = None
    satisfaction: int | None = None  # 1–5, keyed by the caller; None: no rating
    satisfaction_status: str = "not_asked"  # not_asked / rated / no_rating
    disposition: str = ""  # a Disposition value, set when the call ends
    after_transfer: str = ""  # for transfer_failed: where the caller went and how it ended
    hangup_by: str = ""  # caller / agent / subcenter / emergency / system
    hangup_cause: str = ""  # Q.850 cause code and text, e.g. "16 Normal Clearing"
    deadline: Deadline | None = None
    repeat_of: list[str] = field(default_factory=list)  # earlier tickets of this caller (numbers)
    priority: int | None = None  # the queue priority the call waited with (None: never routed to a queue)
    priority_reason: str = ""  # a queues.priority.Reason value that gave it ("": no raise)
    priority_reasons: list[str] = field(default_factory=list)  # every reason the call had, strongest first
    elderly: bool = False  # a registered elderly caller (适老化): the elderly flow ran instead of the menus
    session: str = ""  # the leader session (领导接听, config/sessions.yaml) the call joined: the engine's, never caller data
    from_platform: str = ""  # the call was transferred to us by another 12345 platform (its trunk)
    from_ticket: str = ""  # that platform's ticket number (SIP header X-12345-Ticket): the cases are linked
    out_of_scope: OutOfScope | None = None  # the matter is not 12345's: which, told by whom
    timeline: list[TimelineEntry] = field(default_factory=list)
    closed_by: str = ""  # ami (followed live) / cdr (ended while the engine was away) / lost
    caller_raw: str = ""  # the caller ID as the carrier sent it, when that was not a plain number: never routed on
    recordings: list[Recording] = field(default_factory=list)  # the call's recordings (a callback's too)
    quality: list[QualityScore] = field(default_factory=list)  # quality inspections of the recording, oldest first

    @property
    def emergency_linked(self) -> bool:
        return any(t.kind == "emergency" and t.result == "ANSWER" for t in self.transfers)

    @property
    def closed(self) -> bool:
        """The call has ended (the ticket's ``closed`` phase); the case may still be open."""
        return bool(self.disposition)

    @property
    def case_open(self) -> bool:
        """The citizen's case is not yet 办结 (:data:`CLOSED_STATUSES`): what makes a repeat
        caller's ticket an open one."""
        return self.status not in CLOSED_STATUSES

    def seats(self) -> frozenset[str]:
        """Every seat that talked on the case: the ticket's agent, a seat that answered the call in a
        queue (a callback moves ``agent`` to the seat that called back), a seat whose callback the
        citizen answered. Each may open the ticket as its own."""
        legs = (self.callback or {}).get("attempts") or []
        seats = {self.agent, *(v.agent for v in self.queue_visits if v.outcome == VisitOutcome.ANSWERED),
                 *(str(leg.get("agent") or "") for leg in legs if leg.get("answered"))}
        return frozenset(seat for seat in seats if seat)

    def note(self, at: str, event: str, detail: str = "") -> None:
        self.timeline.append(TimelineEntry(at, event, detail))

    def to_json(self) -> dict[str, Any]:
        """Plain data, field by field (``asdict`` deep-copies every value: several times slower,
        and a ticket is serialised on every write)."""
        data = dict(vars(self))
        data["ivr"] = dict(vars(self.ivr), nodes=list(self.ivr.nodes), keys=list(self.ivr.keys))
        data["agents_rung"] = [dict(vars(a)) for a in self.agents_rung]
        data["seat_collisions"] = [dict(vars(c)) for c in self.seat_collisions]
        data["transfers"] = [dict(vars(x)) for x in self.transfers]
        data["queue_visits"] = [dict(vars(v)) for v in self.queue_visits]
        data["timeline"] = [dict(vars(e)) for e in self.timeline]
        data["deadline"] = dict(vars(self.deadline)) if self.deadline else None
        data["callback"] = dict(self.callback) if self.callback else None
        data["out_of_scope"] = dict(vars(self.out_of_scope)) if self.out_of_scope else None
        data["repeat_of"] = list(self.repeat_of)
        data["priority_reasons"] = list(self.priority_reasons)
        data["recordings"] = [dict(vars(r)) for r in self.recordings]
        data["quality"] = [dict(vars(q), scores=dict(q.scores)) for q in self.quality]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Ticket":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["ivr"] = IvrPath(**data.get("ivr") or {})
        values["agents_rung"] = [AgentAttempt(**a) for a in data.get("agents_rung") or []]
        values["seat_collisions"] = [SeatCollision(**c) for c in data.get("seat_collisions") or []]
        values["transfers"] = [Transfer(**t) for t in data.get("transfers") or []]
        values["queue_visits"] = [QueueVisit(**v) for v in data.get("queue_visits") or []]
        values["timeline"] = [TimelineEntry(**t) for t in data.get("timeline") or []]
        values["deadline"] = Deadline(**data["deadline"]) if data.get("deadline") else None
        values["out_of_scope"] = OutOfScope(**data["out_of_scope"]) if data.get("out_of_scope") else None
        values["recordings"] = [Recording(**r) for r in data.get("recordings") or []]  # none on older tickets
        values["quality"] = [QualityScore(**q) for q in data.get("quality") or []]
        return cls(**values)

    def view(self, *, unmasked: bool) -> dict[str, Any]:
        """The ticket as a role sees it: the caller masked unless ``unmasked`` (audit that)."""
        data = self.to_json()
        if not unmasked:
            data["caller"] = mask_number(self.caller)
            data["caller_raw"] = mask_number(self.caller_raw)
            if data["callback"]:  # a callback number, and the number each leg dialed, is the caller's too
                legs = [{**leg, "number": mask_number(str(leg.get("number") or ""))} for leg in data["callback"].get("attempts") or []]
                data["callback"] = {**data["callback"], "number": mask_number(str(data["callback"].get("number") or "")),
                                    "attempts": legs}
        return data


def decide_disposition(t: Ticket, *, failed: bool = False) -> tuple[Disposition, str]:
    """(disposition, after_transfer) from what the tracker saw; ``failed``: the platform lost
    the call (an Asterisk restart, a call that vanished)."""
    if t.emergency_linked:
        return Disposition.EMERGENCY_LINKED, ""
    handed_on = [x for x in t.transfers if x.result == "ANSWER" or x.kind in ("blind", "attended")]
    if handed_on:
        return Disposition.TRANSFERRED, ""
    failed_transfers = [x for x in t.transfers if x.kind in ("subcenter", "emergency", "platform")]
    if failed_transfers:
        if t.answered:
            after = f"queue {t.queue}: answered by {t.agent}" if t.queue else "answered"
        elif t.callback:
            after = f"callback requested ({t.callback.get('status', 'pending')})"
        elif t.queued:
            after = f"queue {t.queue}: caller hung up after {t.wait_seconds or 0:.0f} s"
        else:
            after = failed_transfers[-1].then or "caller hung up"
        return Disposition.TRANSFER_FAILED, after
    if t.answered:
        return Disposition.ANSWERED, ""
    if failed:
        return Disposition.ERROR, ""
    if t.callback and t.callback.get("status") != "refused":
        return Disposition.CALLBACK, ""
    if t.queued:
        return Disposition.ABANDONED_QUEUE, ""
    return Disposition.ABANDONED_IVR, ""
