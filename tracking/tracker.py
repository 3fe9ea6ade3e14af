"""The call tracker: AMI events in, ticket changes out — a pure state machine, no I/O.

Every citizen call is followed by Asterisk's ``linkedid`` from its first ring to its last
hang-up: the IVR path (the engine's call record), queue join / abandon / leave with the wait,
agents rung / not answering / connected / completed with talk time, dial attempts to
sub-centers and emergency lines with their ``DIALSTATUS`` and hang-up cause, blind and
attended transfers, the satisfaction rating, and who hung up. The adapter
(:mod:`ivr.follow`) feeds it events as plain mappings and writes what it returns; it also
brings the answers of a reconciliation (live channels, CDR rows) after any reconnect.

A call yields two writes: ``opened`` when it arrives, ``closed`` when its last channel is gone
(held back a moment when the engine's IVR record has not arrived yet, so that a caller who
hangs up in the greeting still gets the path on the ticket). In between, each queue visit
yields a ``queue:<queue>:<n>`` write when it ends (the n-th visit of the call to that queue),
which carries the visit's service-level counts (:mod:`queues.kpi`).

A visit ends on ``QueueCallerAbandon`` (abandoned) or ``AgentConnect`` (answered). A
``QueueCallerLeave`` alone does not tell: Asterisk sends it just before ``AgentConnect`` too.
A visit left without an answer is overflowed once the next event says so: the dialplan's
``UserEvent(IvrOverflow)`` (an expert queue's wait limit, or no expert logged in), the caller
joining another queue, or hanging up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from ivr.core.callerid import CallerSettings
from ivr.core.callerid import normalize as normalize_caller
from ivr.config import Settings
from queues.callback import callback_queues, refusal
from transfer.model import EMERGENCY_NUMBERS
from tickets.model import (AgentAttempt, Deadline, IvrPath, OutOfScope, QueueVisit, RequestType, Ticket, Transfer,
                           VisitOutcome, decide_disposition)
from tickets.scope import OUT_OF_SCOPE_VAR
from tracking.records import PendingRecords, same_channel

log = logging.getLogger(__name__)

Event = Mapping[str, str]
# where citizens' calls enter (asterisk-conf/extensions.conf): from the carrier, or handed to us
# by another 12345 platform
CITIZEN_CONTEXTS = frozenset({"from-pstn", "from-platform"})
IVR_CONTEXTS = CITIZEN_CONTEXTS | {"ivr-answer"}  # the dialed number is still the extension: in the IVR
# contexts a citizen's own channel may be in later (a call adopted after a restart)
CALL_CONTEXTS = IVR_CONTEXTS | {"ivr-route", "ivr-queues", "ivr-survey", "ivr-queue-keys", "ivr-callback-request",
                                 "ivr-transfers", "ivr-bridge", "ivr-out-of-scope"}
IVR_GRACE = 3.0  # s a closed call waits for the engine's IVR record before it is written anyway


@dataclass(frozen=True)
class Change:
    """A ticket write the adapter must make: ``phase`` is ``opened``, ``closed`` or, for a
    queue visit that ended (``visit``), ``queue:<queue>:<n>``; ``final``: no queue follows it."""

    phase: str
    ticket: Ticket
    visit: QueueVisit | None = None
    final: bool = False


@dataclass
class Directory:
    """Who is who on this platform, from the config: the role of a channel's endpoint, and
    what a dialed number is."""

    agents: frozenset[str]
    subcenters: Mapping[str, str]  # trunk endpoint → its number
    lines: Mapping[str, tuple[str, str]]  # dialed number → (mode, title)
    platforms: frozenset[str] = frozenset()  # trunks to other 12345 platforms
    matters: Mapping[str, str] = field(default_factory=dict)  # out-of-scope matter → its title
    callers: CallerSettings = CallerSettings()  # which numbers may be called back
    callback_queues: frozenset[str] = frozenset()  # queues that offer a callback

    @classmethod
    def from_settings(cls, s: Settings) -> "Directory":
        return cls(
            agents=frozenset(s.agents),
            subcenters={name: sc.number for name, sc in s.subcenters.items()},
            lines={number: (n.mode, n.title) for number, n in s.numbers.items()},
            platforms=frozenset(s.platforms),
            matters={name: m.title for name, m in s.out_of_scope.items()},
            callers=s.callers,
            callback_queues=callback_queues(s.queues),
        )

    def role(self, channel: str) -> str:
        endpoint = endpoint_of(channel)
        if endpoint in self.agents:
            return "agent"
        if endpoint in self.subcenters:
            return "subcenter"
        if endpoint == "pstn":
            return "caller"
        if endpoint in self.platforms:
            return "platform"
        return "other"


def endpoint_of(channel: str) -> str:
    """``PJSIP/agent1001-0000001a`` → ``agent1001``; ``PJSIP/agent1001`` (an interface) too."""
    name = channel.split("/", 1)[-1]
    head, sep, tail = name.rpartition("-")
    return head if sep and len(tail) == 8 else name


LOCAL = datetime.now().astimezone().tzinfo  # China keeps one offset all year: no DST to follow


def event_time(event: Event) -> datetime:
    """The event's own time (``timestampevents = yes``), as local time."""
    stamp = event.get("Timestamp")
    return datetime.fromtimestamp(float(stamp), LOCAL) if stamp else datetime.now(LOCAL)


def iso(at: datetime) -> str:
    """``at`` as the ticket writes times. A handler writes its event's time several times (the
    field, the timeline, the visit): the last one is kept (held, so its id cannot be reused)."""
    if at is _last_iso[0]:
        return _last_iso[1]
    text = at.isoformat(timespec="milliseconds")
    _last_iso[:] = (at, text)
    return text


_last_iso: list[Any] = [None, ""]


@dataclass
class Call:
    """What the tracker knows of one call while it is up."""

    ticket: Ticket
    roles: dict[str, str] = field(default_factory=dict)  # uniqueid → caller / agent / subcenter / other
    live: set[str] = field(default_factory=set)  # uniqueids still up
    dials: dict[str, Transfer] = field(default_factory=dict)  # dialed channel name → its transfer attempt
    ivr_seen: bool = False
    caller_gone_at: float | None = None  # monotonic-free: the event timestamp of the caller's hang-up
    closing_since: float | None = None  # waiting for the IVR record
    channel: str = ""  # the caller's channel name (an IVR record must name it: tracking/records.py)


DeadlineFn = Callable[[Ticket], Deadline]


class CallTracker:
    def __init__(self, directory: Directory, deadline: DeadlineFn):
        self.directory = directory
        self.deadline = deadline
        self.calls: dict[str, Call] = {}
        self._records = PendingRecords()  # IVR records of calls not (yet) tracked

    # --- events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Change]:
        name = event.get("Event", "")
        if name == "BlindTransfer" or name == "AttendedTransfer":
            return self._transfer(event)
        linkedid = event.get("Linkedid", "")
        if name == "Newchannel":
            return self._new_channel(event)
        call = self.calls.get(linkedid)
        if call is None:
            return []
        at = event_time(event)
        if name == "Hangup":
            return self._hangup(call, event, at)
        handler = _HANDLERS.get(name)
        return (handler(self, call, event, at) or []) if handler is not None else []

    def _new_channel(self, event: Event) -> list[Change]:
        linkedid, unique_id = event.get("Linkedid", ""), event.get("Uniqueid", "")
        call = self.calls.get(linkedid)
        if call is not None:
            call.roles[unique_id] = self.directory.role(event.get("Channel", ""))
            call.live.add(unique_id)
            return []
        if unique_id != linkedid or event.get("Context") not in CITIZEN_CONTEXTS:
            return []
        if self.directory.lines and normalize_line(event.get("Exten", "")) not in self.directory.lines:
            return []  # not a number of the plan: Asterisk refuses it unanswered (cause 1)
        at = event_time(event)
        ticket = self._new_ticket(linkedid, event.get("Exten", ""), event.get("CallerIDNum", ""), at)
        call = Call(ticket, roles={unique_id: "caller"}, live={unique_id}, channel=event.get("Channel", ""))
        self.calls[linkedid] = call
        ticket.note(iso(at), "received", f"{ticket.line}")
        if (record := self._records.take(linkedid, call.channel)) is not None:
            self._apply_record(call, record)
        return [Change("opened", ticket)]

    def _new_ticket(self, linkedid: str, dialed: str, caller: str, at: datetime) -> Ticket:
        line = normalize_line(dialed)
        mode, title = self.directory.lines.get(line, ("", ""))
        # the channel's first caller ID is the carrier's, as sent: the ticket's caller is what the
        # dialplan made of it (ivr/core/callerid.py), the raw value kept beside it only for the record
        number = normalize_caller(caller)
        ticket = Ticket(linkedid=linkedid, line=line, caller=number, received=iso(at), line_mode=mode, line_title=title,
                        caller_raw=caller if caller != number else "")
        ticket.deadline = self.deadline(ticket)
        return ticket

    def _queue_join(self, call: Call, event: Event, at: datetime) -> list[Change]:
        t = call.ticket
        queue = event.get("Queue", "").removeprefix("q-")
        visit = _waiting(t)
        if visit is not None and visit.left and visit.queue == queue:  # back at once (a key that did not count)
            visit.left = ""
            t.note(iso(at), "queue rejoined", f"{queue} position {event.get('Position', '')}")
            return []
        out = _overflowed(t, final=False)  # left the previous queue unanswered, and came here
        if not t.queued:
            t.queued = iso(at)
        t.queue = queue
        t.skill = t.skill or queue
        t.queue_visits.append(QueueVisit(queue, iso(at)))
        t.note(iso(at), "queue joined", f"{queue} position {event.get('Position', '')}")
        return out

    def _queue_abandon(self, call: Call, event: Event, at: datetime) -> list[Change]:
        t = call.ticket
        t.wait_seconds = _seconds_between(t.queued, at) if t.queued else _float(event.get("HoldTime"))
        t.note(iso(at), "queue abandoned", f"{t.queue} after {t.wait_seconds or 0:.1f} s")
        visit = _waiting(t)
        return _end_visit(t, visit, VisitOutcome.ABANDONED, at, event.get("HoldTime")) if visit else []

    def _queue_leave(self, call: Call, event: Event, at: datetime) -> None:
        call.ticket.note(iso(at), "queue left", event.get("Queue", "").removeprefix("q-"))
        visit = _waiting(call.ticket)
        if visit is not None and not visit.left:
            visit.left = iso(at)  # answered (AgentConnect follows) or overflowed (the next event says)

    def _agent_called(self, call: Call, event: Event, at: datetime) -> None:
        agent = endpoint_of(event.get("Interface", ""))
        call.ticket.agents_rung.append(AgentAttempt(agent=agent, rung_at=iso(at)))
        call.ticket.note(iso(at), "agent rung", agent)

    def _agent_no_answer(self, call: Call, event: Event, at: datetime) -> None:
        agent = endpoint_of(event.get("Interface", ""))
        attempt = self._attempt(call, agent)
        if attempt is not None:
            ring_ms = _float(event.get("RingTime"))
            attempt.ring_seconds = ring_ms / 1000 if ring_ms is not None else _seconds_between(attempt.rung_at, at)
        call.ticket.note(iso(at), "agent did not answer", agent)

    def _agent_connect(self, call: Call, event: Event, at: datetime) -> list[Change]:
        t = call.ticket
        agent = endpoint_of(event.get("Interface", ""))
        t.answered, t.agent = iso(at), agent
        t.wait_seconds = _seconds_between(t.queued, at) if t.queued else _float(event.get("HoldTime"))
        attempt = self._attempt(call, agent)
        if attempt is not None:
            attempt.answered = True
            attempt.ring_seconds = _seconds_between(attempt.rung_at, at)
        t.note(iso(at), "agent connected", f"{agent} after {t.wait_seconds or 0:.1f} s")
        visit = _waiting(t)
        return _end_visit(t, visit, VisitOutcome.ANSWERED, at, event.get("HoldTime"), agent) if visit else []

    def _agent_complete(self, call: Call, event: Event, at: datetime) -> None:
        t = call.ticket
        t.talk_seconds = _float(event.get("TalkTime"))
        reason = event.get("Reason", "")
        if reason in ("caller", "agent") and not t.hangup_by:
            t.hangup_by = reason
        t.note(iso(at), "agent completed", f"{t.agent} talk {t.talk_seconds or 0:.0f} s ({reason})")

    @staticmethod
    def _attempt(call: Call, agent: str) -> AgentAttempt | None:
        open_attempts = [a for a in call.ticket.agents_rung if a.agent == agent and not a.answered]
        return open_attempts[-1] if open_attempts else None

    def _dial_begin(self, call: Call, event: Event, at: datetime) -> None:
        dest = event.get("DestChannel", "")
        endpoint = endpoint_of(dest)
        number = event.get("DialString", "").split("@", 1)[0]
        if endpoint in self.directory.platforms:
            kind = "platform"
        elif endpoint in self.directory.subcenters:
            kind = "emergency" if number in EMERGENCY_NUMBERS else "subcenter"
        elif number in EMERGENCY_NUMBERS:
            kind = "emergency"
        else:
            return  # a queue ringing an agent: the Agent* events tell that story
        transfer = Transfer(kind=kind, target=endpoint, number=number, at=iso(at))
        call.ticket.transfers.append(transfer)
        call.dials[dest] = transfer
        call.ticket.note(iso(at), "transfer dialed", f"{number} via {endpoint}")

    def _dial_end(self, call: Call, event: Event, at: datetime) -> None:
        transfer = call.dials.get(event.get("DestChannel", ""))
        if transfer is not None:
            transfer.result = event.get("DialStatus", "")
            call.ticket.note(iso(at), "transfer result", f"{transfer.number}: {transfer.result}")

    def _hangup_request(self, call: Call, event: Event, at: datetime) -> None:
        if not call.ticket.hangup_by and event.get("Event") == "HangupRequest":
            call.ticket.hangup_by = call.roles.get(event.get("Uniqueid", ""), "other")

    def _user_event(self, call: Call, event: Event, at: datetime) -> list[Change] | None:
        kind, t = event.get("UserEvent", ""), call.ticket
        own_channel = event.get("Uniqueid") == t.linkedid
        if kind == "IvrOverflow" and own_channel:  # the dialplan sends the caller on (max_wait, no seat)
            t.note(iso(at), "queue overflow", f"{event.get('Queue', '')} → {event.get('Overflow', '')} "
                                              f"({event.get('Reason', '')})")
            return _overflowed(t, final=False)
        if kind == "IvrCallback" and own_channel and event.get("Stage") == "requested":
            queue, number = event.get("Queue", ""), event.get("Number", "")
            why = refusal(self.directory.callers, self.directory.callback_queues, number, queue)
            t.callback = {"requested": iso(at), "queue": queue, "number": number, "status": "refused" if why else "pending",
                          "attempts": [], **({"reason": why} if why else {})}
            if why:  # the engine places nothing either (ivr/callback.py): the caller is not kept waiting
                t.note(iso(at), "callback refused", why)
                return None
            t.note(iso(at), "callback requested", f"{event.get('Queue', '')} (place kept)")
            visit = _waiting(t)
            return _end_visit(t, visit, VisitOutcome.CALLBACK, at, None) if visit else []
        if kind == "IvrTransfer":
            attempt = _dial_attempt(t, event, at)
            attempt.result = attempt.result or event.get("DialStatus", "")
            fallback = event.get("Fallback", "")
            attempt.then = f"queue {fallback}" if fallback else ("connected" if attempt.result == "ANSWER" else "hangup")
        elif kind == "IvrBridge":
            self._bridge(t, event, at)
        elif kind == "IvrPlatform" and own_channel:  # handed to us by another platform, with its ticket
            t.from_platform, t.from_ticket = event.get("Platform", ""), event.get("Ticket", "")
            t.note(iso(at), "from platform", f"{t.from_platform}: ticket {t.from_ticket or '?'}")
        elif kind == "IvrOutOfScope" and own_channel:  # the agent's feature key (the caller's channel runs it)
            self._out_of_scope(t, event.get("Matter", ""), "agent", iso(at), endpoint_of(event.get("Agent", "")))
        elif kind == "IvrSurvey" and own_channel:
            t.satisfaction_status = "no_rating"  # until a key says otherwise
            t.note(iso(at), "satisfaction asked")
        elif kind == "IvrSatisfaction" and own_channel and event.get("Context") == "ivr-survey":
            rating = event.get("Rating", "")
            if rating in ("1", "2", "3", "4", "5"):
                t.satisfaction, t.satisfaction_status = int(rating), "rated"
            else:
                t.satisfaction, t.satisfaction_status = None, "no_rating"
            t.note(iso(at), "satisfaction", rating or "no rating")
        return None

    @staticmethod
    def _bridge(t: Ticket, event: Event, at: datetime) -> None:
        """A three-party bridge's steps ([ivr-bridge]): the dial to the target is an attempt like
        any (DialBegin made it), marked three-party; its result says who is in the bridge."""
        number, stage = event.get("Number", ""), event.get("Stage", "")
        if stage == "dialing":
            t.note(iso(at), "three-party bridge", f"dialing {number} via {event.get('Trunk', '')}")
            return
        attempt = _dial_attempt(t, event, at)
        attempt.three_party = True
        attempt.result = attempt.result or event.get("DialStatus", "")
        attempt.then = "three-party bridge" if attempt.result == "ANSWER" else "back to the agent"
        t.note(iso(at), "three-party bridge", f"{number}: {attempt.result} ({attempt.then})")

    def _out_of_scope(self, t: Ticket, matter: str, by: str, at: str, agent: str = "") -> None:
        """The caller was told their matter is not 12345's; the first time counts."""
        if t.out_of_scope is None and matter:
            t.out_of_scope = OutOfScope(matter, self.directory.matters.get(matter, ""), by, at, agent)
            t.note(at, "out of scope", f"{matter} ({by})")

    def _transfer(self, event: Event) -> list[Change]:
        name = event.get("Event", "")
        prefix = "Transferer" if name == "BlindTransfer" else "OrigTransferer"
        call = self.calls.get(event.get(f"{prefix}Linkedid", ""))
        if call is None:
            return []
        at = event_time(event)
        if name == "BlindTransfer":
            number, target = event.get("Extension", ""), event.get("Context", "")
        else:
            # an agent's atxfer (*2 and a number) consulted a target we saw dialed (or whose Local
            # channel is still there, its extension the number keyed)
            leg = event.get("TransferTargetChannel", "")
            dialed = call.dials.get(leg)
            number = dialed.number if dialed else _local_exten(leg)
            if not number:  # the consultation's own attempt, else what the target showed (digits only:
                # a connected-line update may show the dialplan's "transfer" or 12345 instead)
                attempts = [t for t in call.ticket.transfers if t.kind not in ("blind", "attended")]
                shown = (event.get("SecondTransfererConnectedLineNum", ""), event.get("TransferTargetCallerIDNum", ""))
                number = attempts[-1].number if attempts else next((n for n in shown if n.isdigit()), "")
            target = endpoint_of(event.get("SecondTransfererChannel", ""))
        result = event.get("Result", "")
        call.ticket.transfers.append(Transfer(kind="blind" if name == "BlindTransfer" else "attended", target=target,
                                              number=number, at=iso(at), result=result))
        call.ticket.note(iso(at), f"{name}", f"{number} ({result})")
        return []

    def _hangup(self, call: Call, event: Event, at: datetime) -> list[Change]:
        unique_id = event.get("Uniqueid", "")
        call.live.discard(unique_id)
        cause = " ".join(p for p in (event.get("Cause", ""), event.get("Cause-txt", "")) if p)
        for dest, transfer in call.dials.items():
            if event.get("Channel") == dest and transfer.result != "ANSWER":
                transfer.cause = cause
        out: list[Change] = []
        if unique_id == call.ticket.linkedid:
            call.ticket.ended, call.ticket.hangup_cause = iso(at), cause
            call.caller_gone_at = at.timestamp()
            out = _overflowed(call.ticket, final=True)
        if call.live:
            return out
        return out + self._close(call, at.timestamp())

    # --- the IVR record --------------------------------------------------------------------

    def ivr_record(self, record: Mapping[str, Any], now: float) -> list[Change]:
        """The engine's record of the call's IVR path (``unique_id`` = the caller's channel)."""
        linkedid = str(record.get("unique_id", ""))
        call = self.calls.get(linkedid)
        if call is None:
            self._records.keep(linkedid, record)
            return []
        if not same_channel(call.channel, record):
            log.warning("IVR record for call %s refused: it names channel %.64r, the call is on %s", linkedid,
                        record.get("channel"), call.channel)
            return []
        self._apply_record(call, record)
        if call.closing_since is not None:
            return self._close(call, now)
        return []

    def _apply_record(self, call: Call, record: Mapping[str, Any]) -> None:
        t, route = call.ticket, record.get("route") or {}
        t.ivr = IvrPath(
            flow=str(record.get("flow", "")),
            nodes=[f"{v['flow']}/{v['node']}" for v in record.get("visits", [])],
            keys=[k for k in record.get("keys", []) if len(k) == 1],
            route=str(route.get("type", "")),
            fallback=bool(record.get("dialplan_fallback")),
            error=str(record.get("error") or ""),
        )
        kind = (record.get("variables") or {}).get("request_type", "")
        if kind and not t.request_type:
            try:
                t.request_type, t.request_type_source = RequestType.parse(kind).value, "ivr"
            except ValueError:
                pass
        if record.get("dialed") and not t.line_mode:
            t.line = normalize_line(str(record["dialed"]))
            t.line_mode, t.line_title = self.directory.lines.get(t.line, ("", ""))
        variables = record.get("variables") or {}
        if variables.get(OUT_OF_SCOPE_VAR):
            visit: Mapping[str, Any] = next((v for v in record.get("visits", []) if v.get("type") == "out_of_scope"), {})
            at = datetime.fromisoformat(str(record["started"])) + timedelta(seconds=float(visit.get("at", 0)))
            self._out_of_scope(t, str(variables[OUT_OF_SCOPE_VAR]), "ivr", iso(at))
        t.repeat_of = list(record.get("repeat_of") or t.repeat_of)
        t.elderly = bool(record.get("elderly")) or t.elderly
        priority = record.get("priority")
        if priority:
            t.priority, t.priority_reason = int(priority["priority"]), str(priority.get("reason", ""))
            t.priority_reasons = [str(r) for r in priority.get("reasons", [])]
        call.ivr_seen = True

    # --- closing ---------------------------------------------------------------------------

    def _close(self, call: Call, now: float, *, failed: bool = False, closed_by: str = "ami") -> list[Change]:
        t = call.ticket
        if not call.ivr_seen and not failed and call.closing_since is None and t.ivr.route != "fallback":
            call.closing_since = now  # the engine's record may be on its way: wait a moment
            return []
        self.calls.pop(t.linkedid, None)
        if not t.ended:
            t.ended = iso(datetime.fromtimestamp(now).astimezone())
        if t.queued and not t.answered and t.wait_seconds is None:
            t.wait_seconds = _seconds_between(t.queued, datetime.fromisoformat(t.ended))
        visits = _end_visits_at_close(t, failed)
        disposition, after = decide_disposition(t, failed=failed)
        t.disposition, t.after_transfer, t.closed_by = disposition.value, after, closed_by
        t.hangup_by = t.hangup_by or ("system" if failed else "")
        if t.deadline is None or t.request_type:  # opened with the untyped (consult) deadline
            t.deadline = self.deadline(t)
        t.note(t.ended, "closed", disposition.value)
        return [*visits, Change("closed", t)]

    def sweep(self, now: float) -> list[Change]:
        """Write calls that waited long enough for their IVR record (call every second)."""
        out: list[Change] = []
        for call in list(self.calls.values()):
            waited = call.closing_since is not None and now - call.closing_since >= IVR_GRACE
            stuck = call.caller_gone_at is not None and now - call.caller_gone_at >= 10 * IVR_GRACE
            if waited or stuck:
                call.closing_since = call.closing_since or now - IVR_GRACE
                out += self._close(call, now)
        return out

    # --- reconciliation --------------------------------------------------------------------

    def adopt(self, channels: Iterable[Event], known: Mapping[str, Ticket], now: float) -> tuple[list[Change], list[str]]:
        """Reconcile with Asterisk's live channels (``CoreShowChannel`` events).

        Calls up but not followed are picked up again (from their stored ticket when there is
        one); followed calls no longer up are returned as *vanished*: they ended while the
        engine was not listening, and are finished from the CDR or closed as lost.
        """
        by_call: dict[str, list[Event]] = {}
        for ch in channels:
            by_call.setdefault(ch.get("Linkedid", ""), []).append(ch)
        changes: list[Change] = []
        for linkedid, chans in by_call.items():
            call = self.calls.get(linkedid)
            if call is None:
                first = next((c for c in chans if c.get("Uniqueid") == linkedid), None)
                if first is None or first.get("Context") not in CALL_CONTEXTS or first.get("Channel", "").startswith("Local/"):
                    continue
                ticket = known.get(linkedid)
                if ticket is None:
                    at = datetime.fromtimestamp(now - _duration(first.get("Duration", ""))).astimezone()
                    ticket = self._new_ticket(linkedid, first.get("Exten", ""), first.get("CallerIDNum", ""), at)
                    if first.get("Context") not in IVR_CONTEXTS:
                        ticket.line = ""  # the dialed number is no longer on the channel
                    changes.append(Change("opened", ticket))
                ticket.note(iso(datetime.fromtimestamp(now).astimezone()), "picked up again", "after a reconnect")
                call = Call(ticket, channel=first.get("Channel", ""))
                self.calls[linkedid] = call
                if (record := self._records.take(linkedid, call.channel)) is not None:
                    self._apply_record(call, record)
                call.ivr_seen = call.ivr_seen or first.get("Context") not in IVR_CONTEXTS
                if first.get("Application") == "Queue":
                    queue = first.get("ApplicationData", "").split(",", 1)[0].removeprefix("q-")
                    ticket.queue = ticket.queue if ticket.queued else queue
                    if _waiting(ticket) is None:  # in a queue since we know not when (HoldTime will say)
                        ticket.queue_visits.append(QueueVisit(queue, ""))
            call.live = {c.get("Uniqueid", "") for c in chans}
            for c in chans:
                role = "caller" if c.get("Uniqueid") == linkedid else self.directory.role(c.get("Channel", ""))
                call.roles.setdefault(c.get("Uniqueid", ""), role)
                if role == "agent" and c.get("BridgeId") and not call.ticket.answered:
                    changes += self._answered_unseen(call, c, now)
        vanished = [linkedid for linkedid in self.calls if linkedid not in by_call]
        return changes, vanished

    @staticmethod
    def _answered_unseen(call: Call, channel: Event, now: float) -> list[Change]:
        """An agent is talking to the caller, but the AgentConnect came while nobody listened:
        answered no later than the agent leg began (its age is on the channel)."""
        t = call.ticket
        at = datetime.fromtimestamp(now - _duration(channel.get("Duration", ""))).astimezone()
        t.answered, t.agent = iso(at), endpoint_of(channel.get("Channel", ""))
        if t.queued:
            t.wait_seconds = _seconds_between(t.queued, at)
        t.note(iso(at), "agent connected", f"{t.agent} (seen after a reconnect; time from the channel's age)")
        visit = _waiting(t)
        return _end_visit(t, visit, VisitOutcome.ANSWERED, at, None, t.agent) if visit else []

    def finish(self, linkedid: str, cdr_rows: list["CdrRow"], now: float, cause: str = "") -> list[Change]:
        """Close a call that ended unseen, from its CDR rows (:mod:`tracking.cdr`): one the
        tracker followed until it lost sight of it, or one it never saw at all."""
        from tracking.cdr import apply_cdr

        call = self.calls.get(linkedid)
        if call is None:  # the whole call ran while no engine was following
            first = min(cdr_rows, key=lambda r: r.start)
            at = datetime.strptime(first.start, "%Y-%m-%d %H:%M:%S").astimezone()
            call = Call(self._new_ticket(linkedid, first.ivr_line or first.dst, first.src, at))
            call.ticket.note(iso(at), "received", f"{call.ticket.line} (from the CDR)")
            self.calls[linkedid] = call
        apply_cdr(call.ticket, cdr_rows, self.directory.agents)
        if cause:  # the CDR says how far the call got, not why it ended
            call.ticket.hangup_cause, call.ticket.hangup_by = cause, "system"
        call.ivr_seen = True
        return self._close(call, now, closed_by="cdr")

    def lose(self, linkedid: str, now: float, cause: str) -> list[Change]:
        """Close a call that vanished without a trace (an Asterisk restart cut it, or no CDR)."""
        call = self.calls.get(linkedid)
        if call is None:
            return []
        call.ticket.hangup_cause = call.ticket.hangup_cause or cause
        return self._close(call, now, failed=True, closed_by="lost")

    def open_calls(self) -> list[str]:
        return list(self.calls)

    def awaiting_ivr_record(self) -> list[str]:
        """Calls that ended and wait for their IVR record (it may come from another process:
        a process-AGI call writes it to Redis only)."""
        return [linkedid for linkedid, call in self.calls.items() if call.closing_since is not None]


# --- queue visits ------------------------------------------------------------------------------

def _waiting(t: Ticket) -> QueueVisit | None:
    """The visit not yet ended (waiting, or just left: an answer may follow)."""
    visit = t.queue_visits[-1] if t.queue_visits else None
    return visit if visit is not None and not visit.outcome else None


def _end_visit(t: Ticket, visit: QueueVisit, outcome: VisitOutcome, at: datetime, hold_time: str | None,
               agent: str = "", *, final: bool = False) -> list[Change]:
    """End ``visit`` at ``at`` (a join not seen: Asterisk's HoldTime says how long it waited)."""
    visit.outcome, visit.agent = outcome.value, agent
    visit.left = visit.left or iso(at)
    if visit.joined:
        visit.wait_seconds = _seconds_between(visit.joined, at)
    else:
        visit.wait_seconds = _float(hold_time)
        if visit.wait_seconds is not None:
            visit.joined = iso(at - timedelta(seconds=visit.wait_seconds))
    n = 0
    for v in t.queue_visits:  # the n-th visit to this queue: a name two engines give alike
        n += v.queue == visit.queue
        if v is visit:
            break
    return [Change(f"queue:{visit.queue}:{n}", t, visit, final)]


def _overflowed(t: Ticket, *, final: bool) -> list[Change]:
    """The visit left without an answer, now that the caller has gone on (or hung up)."""
    visit = _waiting(t)
    if visit is None or not visit.left:
        return []
    return _end_visit(t, visit, VisitOutcome.OVERFLOWED, datetime.fromisoformat(visit.left), None, final=final)


def _end_visits_at_close(t: Ticket, failed: bool) -> list[Change]:
    """Visits still open when the call is closed: no event ended them (a call finished from the
    CDR, or lost). A CDR-only call has its one visit from the summary (waits from the CDR)."""
    out = _overflowed(t, final=True)
    if not t.queue_visits and t.queued and t.queue:
        t.queue_visits.append(QueueVisit(t.queue, t.queued))
    visit = _waiting(t)
    if visit is not None:
        if t.answered:
            outcome, at = VisitOutcome.ANSWERED, datetime.fromisoformat(t.answered)
        else:
            outcome = VisitOutcome.LOST if failed else VisitOutcome.ABANDONED
            at = datetime.fromisoformat(t.ended)
        out += _end_visit(t, visit, outcome, at, None, t.agent if t.answered else "", final=True)
    return out


_HANDLERS: dict[str, Callable[[CallTracker, Call, Event, datetime], list[Change] | None]] = {
    "QueueCallerJoin": CallTracker._queue_join,
    "QueueCallerAbandon": CallTracker._queue_abandon,
    "QueueCallerLeave": CallTracker._queue_leave,
    "AgentCalled": CallTracker._agent_called,
    "AgentRingNoAnswer": CallTracker._agent_no_answer,
    "AgentConnect": CallTracker._agent_connect,
    "AgentComplete": CallTracker._agent_complete,
    "DialBegin": CallTracker._dial_begin,
    "DialEnd": CallTracker._dial_end,
    "HangupRequest": CallTracker._hangup_request,
    "SoftHangupRequest": CallTracker._hangup_request,
    "UserEvent": CallTracker._user_event,
}
HANDLED_EVENTS = frozenset({*_HANDLERS, "Newchannel", "Hangup", "BlindTransfer", "AttendedTransfer", "FullyBooted"})


def _local_exten(channel: str) -> str:
    """The number a Local channel was created for (``Local/12360@ivr-transfers-00000001;1`` →
    12360): its name keeps it while its dialplan has long moved on to ``[ivr-route] transfer``."""
    if not channel.startswith("Local/"):
        return ""
    exten = channel[len("Local/"):].partition("@")[0]
    return exten if exten.isdigit() else ""


def normalize_line(dialed: str) -> str:
    """The dialed number as the number plan knows it: the ``+86`` and ``+`` prefixes go, and
    ``s`` (no number) leads to 12345, as the dialplan routes them."""
    digits = dialed.removeprefix("+86") if dialed.startswith("+86") else dialed.lstrip("+")
    if not digits or not digits.isdigit():
        return "12345" if dialed in ("", "s") else dialed
    return digits


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _seconds_between(since_iso: str, until: datetime) -> float:
    return round((until - datetime.fromisoformat(since_iso)).total_seconds(), 3)


def _duration(hms: str) -> float:
    """``00:01:05`` (CoreShowChannel's Duration) → 65.0."""
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        return h * 3600 + m * 60 + s
    except ValueError:
        return 0.0


from tracking.cdr import CdrRow  # noqa: E402  (cdr needs Ticket only; import last for the annotation)


AGENT_MOVES = frozenset({"blind", "attended"})  # an agent's transfer, not the dial it leads to


def _dial_attempt(t: Ticket, event: Event, at: datetime) -> Transfer:
    """The open attempt to dial the event's ``Number`` (DialBegin opened it); a new one when the
    dial began before we were following the call, or never began (a sub-center closed now: after
    an agent's own transfer the agent's move, with the same number, is not that attempt)."""
    number = event.get("Number", "")
    attempt = next((x for x in reversed(t.transfers)
                    if x.number == number and not x.then and x.kind not in AGENT_MOVES), None)
    if attempt is None:
        attempt = Transfer(kind="emergency" if number in EMERGENCY_NUMBERS else "subcenter",
                           target=event.get("Trunk", ""), number=number, at=iso(at))
        t.transfers.append(attempt)
    return attempt
