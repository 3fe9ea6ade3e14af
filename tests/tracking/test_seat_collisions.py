"""Seat collisions on the ticket (docs/cluster.md "Longest waiting caller across nodes"): the node
that rang a seat second gets the proxies' 486 at once; app_queue reports ``AgentRingNoAnswer`` with
``RingTime`` 0 (whole seconds: 1000 when the second ticked over) and hangs the seat channel up with
``TechCause`` 486. The tracker lists that as a collision, not as a seat that was rung and did not
answer; a ring that timed out, a phone that declined at once (603) or was rejected after ringing
stays a seat that did not answer.

The events are the recorded call's own (tests/tracking/recorded, a real Asterisk 22): the first
seat's offer is the recorded ``AgentCalled`` for another seat and channel, its end the recorded
seat channel's ``Hangup`` with the cause fields a real 486 carries (the recorded busy sub-center's).
"""

from __future__ import annotations

import json

import pytest

from tickets.model import Ticket
from tickets.timeline import call_steps
from tracking.tracker import CallTracker
from tracker_helpers import closed, feed, ivr_record, recorded

SEAT = "agent1002"
CHANNEL, UNIQUEID = "PJSIP/agent1002-00000009", "capture-1796160910.9"


def with_first_offer(ring_ms: int, ring_s: float, hangup: dict[str, str]) -> list[dict[str, str]]:
    """The recorded answered call with a first offer to agent1002 before agent1001's: rung,
    ended after ``ring_s`` s by the events' clocks (app_queue's RingTime ``ring_ms``), its
    channel hung up with ``hangup``'s cause fields."""
    events = recorded("answered_rated")
    called = next(i for i, e in enumerate(events) if e["Event"] == "AgentCalled")
    real = events[called]
    start = float(real["Timestamp"]) - ring_s - 0.05
    seat = {"DestChannel": CHANNEL, "DestUniqueid": UNIQUEID, "Interface": f"PJSIP/{SEAT}", "MemberName": "综合座席1002"}
    offer = dict(real, **seat, Timestamp=f"{start:.6f}")
    missed = dict(real, **seat, Event="AgentRingNoAnswer", Privilege="agent,all", RingTime=str(ring_ms),
                  Timestamp=f"{start + ring_s:.6f}")
    seat_hangup = next(e for e in events if e["Event"] == "Hangup" and e["Channel"].startswith("PJSIP/agent"))
    gone = {k: v for k, v in seat_hangup.items() if k not in ("Cause", "Cause-txt", "TechCause")}
    gone.update(Channel=CHANNEL, Uniqueid=UNIQUEID, ChannelState="0", ChannelStateDesc="Down",
                Timestamp=f"{start + ring_s + 0.001:.6f}", **hangup)
    return events[:called] + [offer, missed, gone] + events[called:]


def busy_hangup() -> dict[str, str]:
    """The cause fields of a real 486 (the recorded busy sub-center's channel)."""
    tax = next(e for e in recorded("tax_busy_then_answered") if e["Event"] == "Hangup" and e.get("TechCause"))
    assert (tax["Cause"], tax["TechCause"]) == ("17", "486")
    return {k: tax[k] for k in ("Cause", "Cause-txt", "TechCause")}


def ticket_of(tracker: CallTracker, events: list[dict[str, str]]) -> Ticket:
    return closed(feed(tracker, events, ivr_record(events[0]["Linkedid"], keys=["1"], route="queue")))


@pytest.mark.parametrize("ring_ms, ring_s", [(0, 0.02), (1000, 0.03)], ids=["same-second", "second-ticked-over"])
def test_given_the_proxy_turns_the_offer_away_with_486_then_a_collision_not_a_seat_that_did_not_answer(
    tracker: CallTracker, ring_ms: int, ring_s: float,
) -> None:
    t = ticket_of(tracker, with_first_offer(ring_ms, ring_s, busy_hangup()))
    assert [c.agent for c in t.seat_collisions] == [SEAT]
    assert [(a.agent, a.answered) for a in t.agents_rung] == [("agent1001", True)]  # only the ring that was one
    events = [e.event for e in t.timeline]
    assert "agent taken" in events and "agent did not answer" not in events
    taken = next(e for e in t.timeline if e.event == "agent taken")
    assert taken.at == t.seat_collisions[0].at and SEAT in taken.detail
    assert any(s.event.startswith("座席占线") for s in call_steps(t))
    assert t.disposition == "answered" and t.agent == "agent1001"


@pytest.mark.parametrize("ring_ms, ring_s, hangup", [
    (15000, 15.0, {"Cause": "16", "Cause-txt": "Normal Clearing"}),  # rang out: the queue's timeout
    (0, 0.02, {"Cause": "21", "Cause-txt": "Call Rejected", "TechCause": "603"}),  # declined at once: RingTime 0 too
    (0, 0.02, {"Cause": "19", "Cause-txt": "No user responding", "TechCause": "408"}),  # unreachable at once
    (1000, 1.5, None),  # 486 after ringing 1.5 s: the agent pressed reject
], ids=["timeout", "declined-603-at-once", "unreachable-at-once", "rejected-after-ringing"])
def test_given_a_seat_that_really_did_not_answer_then_it_stays_rung_and_not_answered(
    tracker: CallTracker, ring_ms: int, ring_s: float, hangup: dict[str, str] | None,
) -> None:
    t = ticket_of(tracker, with_first_offer(ring_ms, ring_s, hangup or busy_hangup()))
    assert t.seat_collisions == []
    missed = [a for a in t.agents_rung if a.agent == SEAT]
    assert len(missed) == 1 and not missed[0].answered and missed[0].ring_seconds == ring_ms / 1000
    events = [e.event for e in t.timeline]
    assert "agent did not answer" in events and "agent taken" not in events


def test_given_a_486_whose_hangup_never_came_then_the_ring_stays_a_ring(tracker: CallTracker) -> None:
    """Only the seat channel's own hang-up with 486 makes a collision (a follower that missed it
    keeps the plain no-answer)."""
    events = [e for e in with_first_offer(0, 0.02, busy_hangup()) if e.get("Uniqueid") != UNIQUEID]
    t = ticket_of(tracker, events)
    assert t.seat_collisions == [] and [a.agent for a in t.agents_rung] == [SEAT, "agent1001"]


def test_given_a_stored_ticket_from_before_collisions_then_it_loads_and_round_trips(tracker: CallTracker) -> None:
    t = ticket_of(tracker, with_first_offer(0, 0.02, busy_hangup()))
    data = json.loads(json.dumps(t.to_json()))
    assert Ticket.from_json(data) == t
    old = {k: v for k, v in data.items() if k != "seat_collisions"}  # as an engine before this wrote it
    assert Ticket.from_json(old).seat_collisions == []
