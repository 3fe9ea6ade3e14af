"""Queue visits on the ticket, from recorded calls: answered, abandoned, overflowed from an expert
queue into the general one, picked up by another engine, ended by a callback request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ivr.core.masking import mask_number
from queues import callback as policy
from tracking.tracker import CallTracker, event_time, iso
from tracker_helpers import closed, feed, ivr_record, recorded


def queue_event(name: str, like: dict[str, str], at: float, queue: str, **extra: str) -> dict[str, str]:
    """A queue event of the caller's channel ``like`` another, at event time ``at``."""
    return {"Event": name, "Timestamp": f"{at:.6f}", "Channel": like["Channel"], "Uniqueid": like["Uniqueid"],
            "Linkedid": like["Linkedid"], "CallerIDNum": like.get("CallerIDNum", ""), "Queue": f"q-{queue}", **extra}


def with_expert_visit(events: list[dict[str, str]], wait: float) -> list[dict[str, str]]:
    """The recorded call as if it first waited ``wait`` s in the expert queue, whose timeout sent
    it on to the general queue: QueueCallerLeave without AgentConnect, the dialplan's
    UserEvent(IvrOverflow), then the recorded join."""
    join = next(i for i, e in enumerate(events) if e["Event"] == "QueueCallerJoin")
    general_at = float(events[join]["Timestamp"])
    shift = wait + 0.01
    for e in events[join:]:
        e["Timestamp"] = f"{float(e['Timestamp']) + shift:.6f}"
    overflow = queue_event("UserEvent", events[join], general_at + wait + 0.001, "-", UserEvent="IvrOverflow",
                           Overflow="general", Reason="TIMEOUT")
    overflow["Queue"] = "expert-hrss"
    expert = [queue_event("QueueCallerJoin", events[join], general_at, "expert-hrss", Position="1"),
              queue_event("QueueCallerLeave", events[join], general_at + wait, "expert-hrss", Position="1"), overflow]
    return events[:join] + expert + events[join:]


def test_given_an_answered_call_then_its_visit_ends_and_is_written_at_the_agent_connect(tracker: CallTracker) -> None:
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    connect = next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect")
    changes = feed(tracker, events[:connect], ivr_record(linkedid, keys=["1"], route="queue"))
    assert [c.phase for c in changes] == ["opened"]  # the QueueCallerLeave alone does not tell
    [change] = tracker.handle(events[connect])
    join = next(e for e in events if e["Event"] == "QueueCallerJoin")
    v = change.visit
    assert change.phase == "queue:general:1" and v is not None and change.ticket.queue_visits == [v]
    assert (v.queue, v.outcome, v.agent) == ("general", "answered", "agent1001")
    assert v.wait_seconds == pytest.approx(float(events[connect]["Timestamp"]) - float(join["Timestamp"]), abs=0.002)
    assert v.joined == change.ticket.queued and v.left <= change.ticket.answered
    t = closed([changes[0], change, *feed(tracker, events[connect + 1:])])
    assert t.queue_visits == [v] and t.wait_seconds == v.wait_seconds


def test_given_a_caller_hanging_up_in_the_queue_then_the_visit_is_abandoned_at_once(tracker: CallTracker) -> None:
    events = recorded("abandoned_in_queue")
    abandon = next(i for i, e in enumerate(events) if e["Event"] == "QueueCallerAbandon")
    changes = feed(tracker, events[:abandon + 1], ivr_record(events[0]["Linkedid"], keys=["0"], route="queue"))
    assert [c.phase for c in changes] == ["opened", "queue:general:1"]
    v = changes[1].visit
    assert v is not None and v.outcome == "abandoned" and v.agent == "" and 11.8 < v.wait_seconds < 11.9  # type: ignore[operator]
    t = closed(changes + feed(tracker, events[abandon + 1:]))
    assert [x.outcome for x in t.queue_visits] == ["abandoned"]


def test_given_an_expert_call_that_times_out_into_the_general_queue_then_two_visits_and_the_whole_wait_on_the_ticket(
    tracker: CallTracker,
) -> None:
    events = with_expert_visit(recorded("answered_rated"), wait=20.0)
    linkedid = events[0]["Linkedid"]
    changes = feed(tracker, events, ivr_record(linkedid, keys=["1"], route="queue"))
    t = closed(changes)
    expert, general = t.queue_visits
    assert (expert.queue, expert.outcome, expert.agent) == ("expert-hrss", "overflowed", "")
    assert expert.wait_seconds == pytest.approx(20.0, abs=0.001)
    assert (general.queue, general.outcome, general.agent) == ("general", "answered", "agent1001")
    assert 0 < general.wait_seconds < 1  # type: ignore[operator]
    # written at the dialplan's IvrOverflow, and not the call's end on its line
    overflowed = next(c for c in changes if c.phase == "queue:expert-hrss:1")
    assert not overflowed.final and overflowed.visit is expert
    tracker2 = CallTracker(tracker.directory, tracker.deadline)
    at_overflow = next(i for i, e in enumerate(events) if e.get("UserEvent") == "IvrOverflow")
    feed(tracker2, events[:at_overflow])
    assert [c.phase for c in tracker2.handle(events[at_overflow])] == ["queue:expert-hrss:1"]
    # the summary: the last queue, the first join, the caller's whole wait
    assert t.queue == "general" and t.queued == expert.joined and t.disposition == "answered"
    assert t.wait_seconds == pytest.approx(20.01 + general.wait_seconds, abs=0.002)  # type: ignore[operator]


def test_given_an_expert_call_that_times_out_and_the_caller_hangs_up_then_overflowed_and_final(
    tracker: CallTracker,
) -> None:
    events = recorded("hangup_in_greeting")
    first, hangup = events[0], events[-1]
    start = float(first["Timestamp"])
    queued = [queue_event("QueueCallerJoin", first, start + 0.5, "expert-hrss", Position="1"),
              queue_event("QueueCallerLeave", first, start + 0.7, "expert-hrss", Position="1")]
    hangup = dict(hangup, Timestamp=f"{start + 0.9:.6f}")
    changes = feed(tracker, [*events[:-1], *queued, hangup], ivr_record(first["Linkedid"], keys=["1"], route="queue"))
    visit = next(c for c in changes if c.visit is not None)
    assert visit.phase == "queue:expert-hrss:1" and visit.final and visit.visit
    assert visit.visit.outcome == "overflowed" and visit.visit.wait_seconds == pytest.approx(0.2, abs=0.001)
    assert closed(changes).disposition == "abandoned_queue"


def test_given_an_engine_that_picks_up_a_queued_call_then_its_visit_has_the_name_the_first_engine_gave_it(
    tracker: CallTracker, settings,
) -> None:
    """Two engines (or one restarted) write the same visit under one phase: counted once."""
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    connect = next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect")
    first = [c for c in feed(tracker, events[:connect + 1]) if c.visit is not None]
    later = CallTracker(tracker.directory, tracker.deadline)
    channel = {"Channel": events[0]["Channel"], "Uniqueid": linkedid, "Linkedid": linkedid, "Context": "ivr-queues",
               "Exten": "general", "CallerIDNum": events[0]["CallerIDNum"], "Application": "Queue",
               "ApplicationData": "q-general,tc,,,", "Duration": "00:00:02"}
    later.adopt([channel], known={}, now=float(events[connect]["Timestamp"]) - 0.1)
    connect_event = dict(events[connect], HoldTime="12")
    [second] = later.handle(connect_event)
    assert [c.phase for c in first] == [second.phase] == ["queue:general:1"]
    v = second.visit
    assert v is not None and v.outcome == "answered" and v.wait_seconds == 12.0  # the join unseen: HoldTime
    assert v.joined == iso(event_time(connect_event) - timedelta(seconds=12))


def test_given_a_caller_who_asks_for_a_callback_then_the_visit_ends_as_callback_and_the_ticket_waits_for_it(
    tracker: CallTracker,
) -> None:
    """The recorded abandoned call, as if the caller had pressed the callback key before hanging up:
    QueueCallerLeave, then the dialplan's UserEvent(IvrCallback, requested), then the hang-up."""
    events = recorded("abandoned_in_queue")
    changes = feed(tracker, with_callback_request(events, events[0]["CallerIDNum"]),
                   ivr_record(events[0]["Linkedid"], keys=["0"], route="queue"))
    t = closed(changes)
    assert t.disposition == "callback" and t.callback is not None
    assert (t.callback["status"], t.callback["queue"], t.callback["number"]) == ("pending", "general", t.caller)
    assert [v.outcome for v in t.queue_visits] == ["callback"]
    assert [c.phase for c in changes if c.phase.startswith("queue:")] == ["queue:general:1"]  # counted once
    assert t.view(unmasked=False)["callback"]["number"] != t.caller  # masked like the caller


def with_callback_request(events: list[dict[str, str]], number: str) -> list[dict[str, str]]:
    """The recorded abandoned call, as if the caller had pressed the callback key before hanging up:
    QueueCallerLeave, then the dialplan's UserEvent(IvrCallback, requested) for ``number``."""
    abandon = next(i for i, e in enumerate(events) if e["Event"] == "QueueCallerAbandon")
    at = float(events[abandon]["Timestamp"])
    leave = queue_event("QueueCallerLeave", events[abandon], at, "general")
    request = dict(queue_event("UserEvent", events[abandon], at + 0.01, "general"), UserEvent="IvrCallback",
                   Stage="requested", Queue="general", Number=number, QueuedAt="1.0", Priority="5")
    return events[:abandon] + [leave, request] + events[abandon + 1:]


def test_given_a_caller_id_carrying_a_dial_string_then_the_ticket_has_its_digits_and_keeps_the_raw_apart(
    tracker: CallTracker,
) -> None:
    """The channel's first caller ID is the carrier's as sent (the dialplan normalizes it after
    Newchannel); a request from a number that may not be called back is refused on the ticket,
    never pending: the caller was not kept waiting for a callback that will not come."""
    raw = "13900000777&Local/110@ivr-transfers/n"
    events = [dict(e, CallerIDNum=raw) if i == 0 else e for i, e in enumerate(recorded("abandoned_in_queue"))]
    t = closed(feed(tracker, with_callback_request(events, "00441234567890"),
                    ivr_record(events[0]["Linkedid"], keys=["0"], route="queue")))
    assert (t.caller, t.caller_raw) == ("13900000777110", raw)
    assert t.callback is not None and (t.callback["status"], t.callback["reason"]) == ("refused", policy.NOT_CALLABLE)
    assert t.disposition == "abandoned_queue" and "callback" not in [v.outcome for v in t.queue_visits]
    assert t.view(unmasked=False)["caller_raw"] == mask_number(raw) != raw


def test_given_a_key_that_did_not_count_then_the_caller_back_in_the_same_queue_is_one_visit(tracker: CallTracker) -> None:
    events = recorded("abandoned_in_queue")
    linkedid = events[0]["Linkedid"]
    join = next(i for i, e in enumerate(events) if e["Event"] == "QueueCallerJoin")
    at = float(events[join]["Timestamp"])
    back = [queue_event("QueueCallerLeave", events[join], at + 1, "general"),
            queue_event("QueueCallerJoin", events[join], at + 1.01, "general", Position="1")]
    t = closed(feed(tracker, events[:join + 1] + back + events[join + 1:], ivr_record(linkedid, keys=["0"], route="queue")))
    assert [v.outcome for v in t.queue_visits] == ["abandoned"] and t.disposition == "abandoned_queue"
