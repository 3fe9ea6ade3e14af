"""The call tracker: AMI events in, ticket changes out — a pure state machine, no I/O.

Every citizen call is followed by Asterisk's ``linkedid`` from its first ring to its last
hang-up: the IVR path (the engine's call record), queue join / abandon / leave with the wait,
agents rung / not answering / connected / completed with talk time, dial attempts to
sub-centers and emergency lines with their ``DIALSTATUS`` and hang-up cause, blind and
attended transfers, the satisfaction rating, and who hung up. The adapter
(:mod:`ivr.follow`) feeds it events as plain mappings and writes what it returns; it also
brings the answers of a reconciliation (live channels, CDR rows) after any reconnect.

A call yields two writes: ``opened`` when it runs (below), ``closed`` when its last channel is gone
(held back a moment when the engine's IVR record has not arrived yet, so that a caller who
hangs up in the greeting still gets the path on the ticket). In between, each queue visit
yields a ``queue:<queue>:<n>`` write when it ends (the n-th visit of the call to that queue),
which carries the visit's service-level counts (:mod:`queues.kpi`).

Asterisk announces a channel (``Newchannel``) before it checks ``maxcalls``: a call a full node
refuses (503, "call limit reached", cause 42 on the channel) was never the node's call — behind
the cluster's proxies the next node answers it and writes its one ticket. So ``opened`` waits for
the first sign that the dialplan runs (the answer's ``Newstate``, any other event of the call, the
IVR record); a caller channel that hangs up before any, with cause 42 and still in the context it
arrived in, leaves no ticket. Every other call that ends before such a sign gets ``opened`` with its
``closed``, as before; a follower that dies in between leaves it to reconciliation, as any call.

A visit ends on ``QueueCallerAbandon`` (abandoned) or ``AgentConnect`` (answered). A
``QueueCallerLeave`` alone does not tell: Asterisk sends it just before ``AgentConnect`` too.
A visit left without an answer is overflowed once the next event says so: the dialplan's
``UserEvent(IvrOverflow)`` (an expert queue's wait limit, or no expert logged in), the caller
joining another queue, or hanging up.

This module keeps a call's life (new channel, hang-up, the IVR record, closing) and dispatches
the other events to :mod:`tracking.visits` (queues and agents), :mod:`tracking.transfers` and
:mod:`tracking.user_events`; :mod:`tracking.reconcile` picks calls up after a reconnect. Every
name the tracker had is still importable from here.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from ivr.core.callerid import normalize as normalize_caller
from ivr.core.channel import endpoint_of
from ivr.core.strict import NAME
from ivr.numbers.lines import normalize_line
from tickets.model import Deadline, IvrPath, RequestType, Ticket, decide_disposition
from tickets.scope import OUT_OF_SCOPE_VAR
from tracking import reconcile
from tracking.cdr import CdrRow
from tracking.channels import (CALL_CONTEXTS, CITIZEN_CONTEXTS, IVR_CONTEXTS, LOCAL, Directory, Event, event_time, iso,
                               seconds_between)
from tracking.records import PendingRecords, same_channel
from tracking.state import Call, Change, Handler, open_once
from tracking.transfers import AGENT_MOVES, blind_or_attended, dial_begin, dial_end
from tracking.user_events import out_of_scope, user_event
from tracking.visits import (agent_called, agent_complete, agent_connect, agent_no_answer, end_visits_at_close,
                             overflowed, queue_abandon, queue_join, queue_leave, seat_hangup)

__all__ = [
    "AGENT_MOVES", "CALL_CONTEXTS", "CITIZEN_CONTEXTS", "HANDLED_EVENTS", "IVR_CONTEXTS", "IVR_GRACE", "LOCAL", "Call",
    "CallTracker", "CdrRow", "Change", "DeadlineFn", "Directory", "Event", "endpoint_of", "event_time", "iso",
    "normalize_line",
]

log = logging.getLogger(__name__)

IVR_GRACE = 3.0  # s a closed call waits for the engine's IVR record before it is written anyway

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
            return blind_or_attended(self.calls, event)
        linkedid = event.get("Linkedid", "")
        if name == "Newchannel":
            return self._new_channel(event)
        call = self.calls.get(linkedid)
        if call is None:
            return []
        at = event_time(event)
        if name == "Hangup":
            return self._hangup(call, event, at)
        opened = open_once(call)
        handler = _HANDLERS.get(name)
        return opened + ((handler(self.directory, call, event, at) or []) if handler is not None else [])

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
        call = Call(ticket, roles={unique_id: "caller"}, live={unique_id}, channel=event.get("Channel", ""),
                    opened=False)
        self.calls[linkedid] = call
        ticket.note(iso(at), "received", f"{ticket.line}")
        if (record := self._records.take(linkedid, call.channel)) is not None:
            self._apply_record(call, record)  # the engine ran it already: the dialplan runs
            return open_once(call)
        return []

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

    def _hangup(self, call: Call, event: Event, at: datetime) -> list[Change]:
        unique_id = event.get("Uniqueid", "")
        call.live.discard(unique_id)
        if refused_by_asterisk(call, event):
            self.calls.pop(call.ticket.linkedid, None)
            log.info("call %s refused by Asterisk before its dialplan ran (%s %s): no ticket", call.ticket.linkedid,
                     event.get("Cause", ""), event.get("Cause-txt", ""))
            return []
        opened = open_once(call)
        seat_hangup(call, event)
        cause = " ".join(p for p in (event.get("Cause", ""), event.get("Cause-txt", "")) if p)
        for dest, transfer in call.dials.items():
            if event.get("Channel") == dest and transfer.result != "ANSWER":
                transfer.cause = cause
        out: list[Change] = []
        if unique_id == call.ticket.linkedid:
            call.ticket.ended, call.ticket.hangup_cause = iso(at), cause
            call.caller_gone_at = at.timestamp()
            out = overflowed(call.ticket, final=True)
        if call.live:
            return opened + out
        return opened + out + self._close(call, at.timestamp())

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
        opened = open_once(call)
        self._apply_record(call, record)
        if call.closing_since is not None:
            return opened + self._close(call, now)
        return opened

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
            out_of_scope(self.directory, t, str(variables[OUT_OF_SCOPE_VAR]), "ivr", iso(at))
        t.repeat_of = list(record.get("repeat_of") or t.repeat_of)
        t.elderly = bool(record.get("elderly")) or t.elderly
        if re.fullmatch(NAME, str(record.get("leader_session") or "")):  # a session id, or nothing
            t.session = str(record["leader_session"])
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
            t.wait_seconds = seconds_between(t.queued, datetime.fromisoformat(t.ended))
        visits = end_visits_at_close(t, failed)
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

    # --- reconciliation (tracking/reconcile.py) --------------------------------------------

    def adopt(self, channels: Iterable[Event], known: Mapping[str, Ticket], now: float) -> tuple[list[Change], list[str]]:
        """Reconcile with Asterisk's live channels (``CoreShowChannel`` events).

        Calls up but not followed are picked up again (from their stored ticket when there is
        one); followed calls no longer up are returned as *vanished*: they ended while the
        engine was not listening, and are finished from the CDR or closed as lost.
        """
        return reconcile.adopt(self, channels, known, now)

    def finish(self, linkedid: str, cdr_rows: list[CdrRow], now: float, cause: str = "",
               record: Mapping[str, Any] | None = None) -> list[Change]:
        """Close a call that ended unseen, from its CDR rows (:mod:`tracking.cdr`): one the
        tracker followed until it lost sight of it, or one it never saw at all (with its IVR
        ``record`` from Redis, when there is one)."""
        return reconcile.finish(self, linkedid, cdr_rows, now, cause, record)

    def lose(self, linkedid: str, now: float, cause: str) -> list[Change]:
        """Close a call that vanished without a trace (an Asterisk restart cut it, or no CDR)."""
        return reconcile.lose(self, linkedid, now, cause)

    def open_calls(self) -> list[str]:
        return list(self.calls)

    def awaiting_ivr_record(self) -> list[str]:
        """Calls that ended and wait for their IVR record (it may come from another process:
        a process-AGI call writes it to Redis only)."""
        return [linkedid for linkedid, call in self.calls.items() if call.closing_since is not None]


CALL_LIMIT_CAUSE = "42"  # AST_CAUSE_SWITCH_CONGESTION: what chan_pjsip sets when ast_pbx_start refuses


def refused_by_asterisk(call: Call, event: Event) -> bool:
    """Whether the caller's channel hung up before its dialplan ran, refused by Asterisk itself
    (``maxcalls``: "Failed to start PBX (call limit reached)", 503 to the proxy): nothing of the
    call was seen but its Newchannel, the channel is still at its first step, the cause is 42."""
    return (not call.opened and not call.live and not call.ivr_seen
            and event.get("Uniqueid") == call.ticket.linkedid and event.get("Cause") == CALL_LIMIT_CAUSE
            and event.get("Context") in CITIZEN_CONTEXTS and event.get("Priority") == "1")


def hangup_request(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    """Who hung up: the first ``HangupRequest`` names the party (a ``SoftHangupRequest`` sets nothing)."""
    if not call.ticket.hangup_by and event.get("Event") == "HangupRequest":
        call.ticket.hangup_by = call.roles.get(event.get("Uniqueid", ""), "other")


_HANDLERS: dict[str, Handler] = {
    "QueueCallerJoin": queue_join,
    "QueueCallerAbandon": queue_abandon,
    "QueueCallerLeave": queue_leave,
    "AgentCalled": agent_called,
    "AgentRingNoAnswer": agent_no_answer,
    "AgentConnect": agent_connect,
    "AgentComplete": agent_complete,
    "DialBegin": dial_begin,
    "DialEnd": dial_end,
    "HangupRequest": hangup_request,
    "SoftHangupRequest": hangup_request,
    "UserEvent": user_event,
}
HANDLED_EVENTS = frozenset({*_HANDLERS, "Newchannel", "Newstate", "Hangup", "BlindTransfer", "AttendedTransfer", "FullyBooted"})
