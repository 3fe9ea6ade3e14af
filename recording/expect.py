"""What a call's ticket says its recording should be (no I/O): whether the policy recorded it,
how long its file should last, and which seats talked on it.

The worker cannot read Asterisk's log (MixMonitor's write errors stay there), so it judges a
file by the ticket: a call the policy records that talked and left no file at all (MixMonitor
could not create it), and a file much shorter than the talk the ticket counted (the disk filled
during the call), are said on the ticket instead of passing as a whole recording.
"""

from __future__ import annotations

from datetime import datetime

from recording.rules import MIN_TALK, Mode, RecordingSettings, call_mode
from tickets.model import Recording, Ticket, VisitOutcome

SHORT_BY = 2.0  # s a file may miss of the talk (the hook starts as the seat is offered; TalkTime is whole seconds)
SHORT_SHARE = 0.1  # ... or this share of a long talk, whichever is more
CALLBACK_MARK = "-cb-"  # a callback's file: <the call called back>-cb-<the stand-in's own linkedid>.<mode>


def answered_queue(ticket: Ticket) -> str:
    """The queue whose seat answered the call (its rule was the one applied), else the last one."""
    for visit in reversed(ticket.queue_visits):
        if visit.outcome == VisitOutcome.ANSWERED:
            return visit.queue
    return ticket.queue


def expected_mode(s: RecordingSettings, ticket: Ticket) -> Mode:
    """The mode the dialplan gave the call, from the same rules (line, answering queue, matter)."""
    return call_mode(s, ticket.line, answered_queue(ticket), ticket.request_type)


def _seconds(since: str, until: str) -> float:
    if not since or not until:
        return 0.0
    return max(0.0, (datetime.fromisoformat(until) - datetime.fromisoformat(since)).total_seconds())


def should_have_file(s: RecordingSettings, ticket: Ticket) -> bool:
    """A closed call whose recording Asterisk must have written: the policy records it and it
    talked (a seat for MIN_TALK s from answer; from the start: the call itself lasted that long).
    A call that never reached a seat leaves no file of its own when recorded from answer."""
    mode = expected_mode(s, ticket)
    if mode == "answer":
        answered_here = any(v.outcome == VisitOutcome.ANSWERED for v in ticket.queue_visits)
        return bool(ticket.answered and answered_here and (ticket.talk_seconds or 0.0) >= MIN_TALK)
    if mode == "start":
        return _seconds(ticket.received, ticket.ended) >= MIN_TALK
    return False


def talk_expected(ticket: Ticket, mode: str, source: str) -> float | None:
    """How long the call's own file should last (None: the ticket cannot tell): from answer, the
    seat's talk (AgentComplete's TalkTime: a transfer after it only adds to the file); from the
    start, the call. A callback's file is the stand-in's, whose talk the ticket does not time."""
    if CALLBACK_MARK in source:
        return None
    if mode == "answer":
        return ticket.talk_seconds if ticket.talk_seconds else None
    if mode == "start":
        return _seconds(ticket.received, ticket.ended) or None
    return None


def cut_short(recorded: float, expected: float | None) -> bool:
    """The file misses part of the talk: more than SHORT_BY s, or SHORT_SHARE of it."""
    return expected is not None and expected - recorded > max(SHORT_BY, SHORT_SHARE * expected)


def seats_of(ticket: Ticket, rec: Recording) -> frozenset[str]:
    """The seats that talked on this recording's call, who may play it as their own (where
    ``agents_play_own``): the ticket's agent; for the call itself, every seat that answered it in a
    queue (a callback moves the ticket's agent to the seat that called back); for a callback's
    file, the seats whose callback the citizen answered."""
    seats = {ticket.agent}
    if CALLBACK_MARK in rec.source:
        legs = (ticket.callback or {}).get("attempts") or []
        seats |= {str(leg.get("agent") or "") for leg in legs if leg.get("answered")}
    else:
        seats |= {v.agent for v in ticket.queue_visits if v.outcome == VisitOutcome.ANSWERED}
    return frozenset(seat for seat in seats if seat)
