"""Reconciliation after the tracker lost sight of Asterisk (a reconnect, a restart): calls
still up are adopted again, calls that ended unseen are finished from the CDR or closed as lost.

The functions work on the tracker through :class:`Tracker` (what they need of
:class:`tracking.tracker.CallTracker`), so this module does not import the tracker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, Protocol

from ivr.core.channel import endpoint_of
from tickets.model import QueueVisit, Ticket, VisitOutcome
from tracking.cdr import CdrRow, apply_cdr
from tracking.channels import CALL_CONTEXTS, IVR_CONTEXTS, Directory, Event, duration, iso, seconds_between
from tracking.records import PendingRecords, same_channel
from tracking.state import Call, Change, open_once
from tracking.visits import end_visit, waiting


class Tracker(Protocol):
    """The part of the call tracker that reconciliation works on."""

    directory: Directory
    calls: dict[str, Call]
    _records: PendingRecords

    def _new_ticket(self, linkedid: str, dialed: str, caller: str, at: datetime) -> Ticket: ...

    def _apply_record(self, call: Call, record: Mapping[str, Any]) -> None: ...

    def _close(self, call: Call, now: float, *, failed: bool = False, closed_by: str = "ami") -> list[Change]: ...


def adopt(tracker: Tracker, channels: Iterable[Event], known: Mapping[str, Ticket],
          now: float) -> tuple[list[Change], list[str]]:
    """Reconcile with Asterisk's live channels (``CoreShowChannel`` events): see
    :meth:`tracking.tracker.CallTracker.adopt`."""
    by_call: dict[str, list[Event]] = {}
    for ch in channels:
        by_call.setdefault(ch.get("Linkedid", ""), []).append(ch)
    changes: list[Change] = []
    for linkedid, chans in by_call.items():
        call = tracker.calls.get(linkedid)
        if call is None:
            first = next((c for c in chans if c.get("Uniqueid") == linkedid), None)
            if first is None or first.get("Context") not in CALL_CONTEXTS or first.get("Channel", "").startswith("Local/"):
                continue
            ticket = known.get(linkedid)
            if ticket is None:
                at = datetime.fromtimestamp(now - duration(first.get("Duration", ""))).astimezone()
                ticket = tracker._new_ticket(linkedid, first.get("Exten", ""), first.get("CallerIDNum", ""), at)
                if first.get("Context") not in IVR_CONTEXTS:
                    ticket.line = ""  # the dialed number is no longer on the channel
                changes.append(Change("opened", ticket))
            ticket.note(iso(datetime.fromtimestamp(now).astimezone()), "picked up again", "after a reconnect")
            call = Call(ticket, channel=first.get("Channel", ""))
            tracker.calls[linkedid] = call
            if (record := tracker._records.take(linkedid, call.channel)) is not None:
                tracker._apply_record(call, record)
            call.ivr_seen = call.ivr_seen or first.get("Context") not in IVR_CONTEXTS
            if first.get("Application") == "Queue":
                queue = first.get("ApplicationData", "").split(",", 1)[0].removeprefix("q-")
                ticket.queue = ticket.queue if ticket.queued else queue
                if waiting(ticket) is None:  # in a queue since we know not when (HoldTime will say)
                    ticket.queue_visits.append(QueueVisit(queue, ""))
        changes += open_once(call)  # still up after a reconnect: its dialplan ran
        call.live = {c.get("Uniqueid", "") for c in chans}
        for c in chans:
            role = "caller" if c.get("Uniqueid") == linkedid else tracker.directory.role(c.get("Channel", ""))
            call.roles.setdefault(c.get("Uniqueid", ""), role)
            if role == "agent" and c.get("BridgeId") and not call.ticket.answered:
                changes += answered_unseen(call, c, now)
    vanished = [linkedid for linkedid in tracker.calls if linkedid not in by_call]
    return changes, vanished


def answered_unseen(call: Call, channel: Event, now: float) -> list[Change]:
    """An agent is talking to the caller, but the AgentConnect came while nobody listened:
    answered no later than the agent leg began (its age is on the channel)."""
    t = call.ticket
    at = datetime.fromtimestamp(now - duration(channel.get("Duration", ""))).astimezone()
    t.answered, t.agent = iso(at), endpoint_of(channel.get("Channel", ""))
    if t.queued:
        t.wait_seconds = seconds_between(t.queued, at)
    t.note(iso(at), "agent connected", f"{t.agent} (seen after a reconnect; time from the channel's age)")
    visit = waiting(t)
    return end_visit(t, visit, VisitOutcome.ANSWERED, at, None, t.agent) if visit else []


def finish(tracker: Tracker, linkedid: str, cdr_rows: list[CdrRow], now: float, cause: str = "",
           record: Mapping[str, Any] | None = None) -> list[Change]:
    """Close a call that ended unseen, from its CDR rows: see :meth:`tracking.tracker.CallTracker.finish`.
    ``record``: the call's IVR record from Redis (an engine served its FastAGI while no engine
    followed it), applied when it names the caller's channel of the CDR."""
    call = tracker.calls.get(linkedid)
    if call is None:  # the whole call ran while no engine was following
        first = min(cdr_rows, key=lambda r: r.start)
        at = datetime.strptime(first.start, "%Y-%m-%d %H:%M:%S").astimezone()
        call = Call(tracker._new_ticket(linkedid, first.ivr_line or first.dst, first.src, at))
        call.ticket.note(iso(at), "received", f"{call.ticket.line} (from the CDR)")
        tracker.calls[linkedid] = call
    caller = next((r.channel for r in cdr_rows if r.uniqueid == linkedid), "")
    if record is not None and not call.ivr_seen and caller and same_channel(caller, record):
        tracker._apply_record(call, record)
    apply_cdr(call.ticket, cdr_rows, tracker.directory.agents)
    if cause:  # the CDR says how far the call got, not why it ended
        call.ticket.hangup_cause, call.ticket.hangup_by = cause, "system"
    call.ivr_seen = True
    return tracker._close(call, now, closed_by="cdr")


def lose(tracker: Tracker, linkedid: str, now: float, cause: str) -> list[Change]:
    """Close a call that vanished without a trace (an Asterisk restart cut it, or no CDR)."""
    call = tracker.calls.get(linkedid)
    if call is None:
        return []
    call.ticket.hangup_cause = call.ticket.hangup_cause or cause
    return tracker._close(call, now, failed=True, closed_by="lost")
