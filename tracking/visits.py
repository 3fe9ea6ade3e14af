"""Queue visits and the agents rung for them: the ``QueueCaller*`` and ``Agent*`` handlers, and
the seat collisions (a seat rung while taken on another node, :func:`seat_hangup`).

A visit ends on ``QueueCallerAbandon`` (abandoned) or ``AgentConnect`` (answered). A
``QueueCallerLeave`` alone does not tell: Asterisk sends it just before ``AgentConnect`` too.
A visit left without an answer is overflowed once the next event says so (:func:`overflowed`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ivr.core.channel import endpoint_of
from ivr.core.convert import to_float_or_none
from tickets.model import AgentAttempt, QueueVisit, SeatCollision, Ticket, VisitOutcome
from tracking.channels import Directory, Event, iso, seconds_between
from tracking.state import Call, Change

# A collision (docs/cluster.md "Longest waiting caller across nodes"): the node that rang a seat
# second gets the proxies' 486 within milliseconds. app_queue (22, apps/app_queue.c) reports it as
# AgentRingNoAnswer with RingTime in whole seconds of time(NULL) (0, or 1000 when the second ticked
# over), then hangs the seat channel up with TechCause 486. A ring that timed out has RingTime = the
# queue's timeout; a phone declining at once ends with 603/480/…, not 486.
AT_ONCE_MS = 1000  # app_queue's RingTime, whole seconds
AT_ONCE_S = 1.0  # AgentCalled → AgentRingNoAnswer by the events' own timestamps
SEAT_TAKEN = "486"  # the seat channel's TechCause: SIP 486 Busy Here


def queue_join(directory: Directory, call: Call, event: Event, at: datetime) -> list[Change]:
    t = call.ticket
    queue = event.get("Queue", "").removeprefix("q-")
    visit = waiting(t)
    if visit is not None and visit.left and visit.queue == queue:  # back at once (a key that did not count)
        visit.left = ""
        t.note(iso(at), "queue rejoined", f"{queue} position {event.get('Position', '')}")
        return []
    out = overflowed(t, final=False)  # left the previous queue unanswered, and came here
    if not t.queued:
        t.queued = iso(at)
    t.queue = queue
    t.skill = t.skill or queue
    t.queue_visits.append(QueueVisit(queue, iso(at)))
    t.note(iso(at), "queue joined", f"{queue} position {event.get('Position', '')}")
    return out


def queue_abandon(directory: Directory, call: Call, event: Event, at: datetime) -> list[Change]:
    t = call.ticket
    t.wait_seconds = seconds_between(t.queued, at) if t.queued else to_float_or_none(event.get("HoldTime"))
    t.note(iso(at), "queue abandoned", f"{t.queue} after {t.wait_seconds or 0:.1f} s")
    visit = waiting(t)
    return end_visit(t, visit, VisitOutcome.ABANDONED, at, event.get("HoldTime")) if visit else []


def queue_leave(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    call.ticket.note(iso(at), "queue left", event.get("Queue", "").removeprefix("q-"))
    visit = waiting(call.ticket)
    if visit is not None and not visit.left:
        visit.left = iso(at)  # answered (AgentConnect follows) or overflowed (the next event says)


def agent_called(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    agent = endpoint_of(event.get("Interface", ""))
    call.ticket.agents_rung.append(AgentAttempt(agent=agent, rung_at=iso(at)))
    call.ticket.note(iso(at), "agent rung", agent)


def agent_no_answer(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    agent = endpoint_of(event.get("Interface", ""))
    attempt = open_attempt(call, agent)
    ring_ms = to_float_or_none(event.get("RingTime"))
    if attempt is not None:
        attempt.ring_seconds = ring_ms / 1000 if ring_ms is not None else seconds_between(attempt.rung_at, at)
    call.ticket.note(iso(at), "agent did not answer", agent)
    seat_channel = event.get("DestUniqueid", "")
    if (attempt is not None and seat_channel and ring_ms is not None and ring_ms <= AT_ONCE_MS
            and seconds_between(attempt.rung_at, at) < AT_ONCE_S):
        call.turned_away[seat_channel] = (attempt, call.ticket.timeline[-1])  # its hang-up tells why


def seat_hangup(call: Call, event: Event) -> None:
    """The hang-up of a seat channel whose ring ended at once: with SIP 486 the seat was taken
    (the proxies' seat lock: another node's call has it) — a collision, not a ring the seat let
    go by, so it leaves ``agents_rung`` and its timeline entry says so. Any other end (603
    declined, 480/408 unreachable, …) stays a seat that did not answer."""
    pending = call.turned_away.pop(event.get("Uniqueid", ""), None)
    if pending is None or event.get("TechCause") != SEAT_TAKEN:
        return
    attempt, entry = pending
    t = call.ticket
    if attempt in t.agents_rung:
        t.agents_rung.remove(attempt)
    t.seat_collisions.append(SeatCollision(attempt.agent, entry.at))
    entry.event, entry.detail = "agent taken", f"{attempt.agent} (SIP {SEAT_TAKEN})"


def agent_connect(directory: Directory, call: Call, event: Event, at: datetime) -> list[Change]:
    t = call.ticket
    agent = endpoint_of(event.get("Interface", ""))
    t.answered, t.agent = iso(at), agent
    t.wait_seconds = seconds_between(t.queued, at) if t.queued else to_float_or_none(event.get("HoldTime"))
    attempt = open_attempt(call, agent)
    if attempt is not None:
        attempt.answered = True
        attempt.ring_seconds = seconds_between(attempt.rung_at, at)
    t.note(iso(at), "agent connected", f"{agent} after {t.wait_seconds or 0:.1f} s")
    visit = waiting(t)
    return end_visit(t, visit, VisitOutcome.ANSWERED, at, event.get("HoldTime"), agent) if visit else []


def agent_complete(directory: Directory, call: Call, event: Event, at: datetime) -> None:
    t = call.ticket
    t.talk_seconds = to_float_or_none(event.get("TalkTime"))
    reason = event.get("Reason", "")
    if reason in ("caller", "agent") and not t.hangup_by:
        t.hangup_by = reason
    t.note(iso(at), "agent completed", f"{t.agent} talk {t.talk_seconds or 0:.0f} s ({reason})")


def open_attempt(call: Call, agent: str) -> AgentAttempt | None:
    """The agent's last ring of this call not answered yet."""
    open_attempts = [a for a in call.ticket.agents_rung if a.agent == agent and not a.answered]
    return open_attempts[-1] if open_attempts else None


def waiting(t: Ticket) -> QueueVisit | None:
    """The visit not yet ended (waiting, or just left: an answer may follow)."""
    visit = t.queue_visits[-1] if t.queue_visits else None
    return visit if visit is not None and not visit.outcome else None


def end_visit(t: Ticket, visit: QueueVisit, outcome: VisitOutcome, at: datetime, hold_time: str | None,
              agent: str = "", *, final: bool = False) -> list[Change]:
    """End ``visit`` at ``at`` (a join not seen: Asterisk's HoldTime says how long it waited)."""
    visit.outcome, visit.agent = outcome.value, agent
    visit.left = visit.left or iso(at)
    if visit.joined:
        visit.wait_seconds = seconds_between(visit.joined, at)
    else:
        visit.wait_seconds = to_float_or_none(hold_time)
        if visit.wait_seconds is not None:
            visit.joined = iso(at - timedelta(seconds=visit.wait_seconds))
            t.queued = t.queued or visit.joined  # a call picked up in the queue: queued since then
    n = 0
    for v in t.queue_visits:  # the n-th visit to this queue: a name two engines give alike
        n += v.queue == visit.queue
        if v is visit:
            break
    return [Change(f"queue:{visit.queue}:{n}", t, visit, final)]


def overflowed(t: Ticket, *, final: bool) -> list[Change]:
    """The visit left without an answer, now that the caller has gone on (or hung up)."""
    visit = waiting(t)
    if visit is None or not visit.left:
        return []
    return end_visit(t, visit, VisitOutcome.OVERFLOWED, datetime.fromisoformat(visit.left), None, final=final)


def end_visits_at_close(t: Ticket, failed: bool) -> list[Change]:
    """Visits still open when the call is closed: no event ended them (a call finished from the
    CDR, or lost). A CDR-only call has its one visit from the summary (waits from the CDR)."""
    out = overflowed(t, final=True)
    if not t.queue_visits and t.queued and t.queue:
        t.queue_visits.append(QueueVisit(t.queue, t.queued))
    visit = waiting(t)
    if visit is not None:
        if t.answered:
            outcome, at = VisitOutcome.ANSWERED, datetime.fromisoformat(t.answered)
        else:
            outcome = VisitOutcome.LOST if failed else VisitOutcome.ABANDONED
            at = datetime.fromisoformat(t.ended)
        out += end_visit(t, visit, outcome, at, None, t.agent if t.answered else "", final=True)
    return out
