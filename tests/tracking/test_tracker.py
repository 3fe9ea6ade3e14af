"""The call tracker on AMI event sequences recorded from real calls on the test bed
(tests/tracking/recorded/*.json, as the engine's event filter passes them): each ends in exactly
one closed ticket with the right disposition, times and path."""

from __future__ import annotations

from datetime import datetime

import pytest

from tickets.model import Ticket
from tracking.cdr import CdrRow
from tracking.tracker import IVR_GRACE, CallTracker, endpoint_of, normalize_line
from tracker_helpers import closed, feed, ivr_record, recorded


def test_given_a_call_an_agent_answers_and_ends_then_one_answered_ticket_with_wait_and_talk_time(
    tracker: CallTracker,
) -> None:
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    t = closed(feed(tracker, events, ivr_record(linkedid, keys=["1"], route="queue", request_type="consult")))
    assert t.disposition == "answered" and t.closed_by == "ami"
    assert t.line == "12345" and t.line_mode == "main" and t.caller == events[0]["CallerIDNum"]
    assert t.queue == "general" and t.agent == "agent1001" and t.talk_seconds == 2.0
    assert 0 < t.wait_seconds < 1  # type: ignore[operator]
    assert t.received < t.queued < t.answered < t.ended
    assert t.hangup_by == "agent" and t.hangup_cause == "16 Normal Clearing"
    assert t.request_type == "consult" and t.request_type_source == "ivr"
    assert t.ivr.keys == ["1"] and t.ivr.nodes == ["main/greeting", "main/menu"]
    assert t.satisfaction is None and t.satisfaction_status == "no_rating"  # asked, no key
    assert t.deadline is not None and t.deadline.rule.startswith("3 working days")
    assert [a.agent for a in t.agents_rung] == ["agent1001"] and t.agents_rung[0].answered
    assert tracker.open_calls() == []


def test_given_a_rating_key_from_the_callers_own_channel_then_it_lands_and_one_from_elsewhere_does_not(
    tracker: CallTracker,
) -> None:
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    for e in events:
        if e.get("UserEvent") == "IvrSatisfaction":
            e["Rating"] = "4"
    forged = dict(next(e for e in events if e.get("UserEvent") == "IvrSatisfaction"),
                  Uniqueid="other-channel", Rating="1")
    at = next(i for i, e in enumerate(events) if e.get("UserEvent") == "IvrSatisfaction")
    events.insert(at + 1, forged)
    t = closed(feed(tracker, events, ivr_record(linkedid, keys=["1"], route="queue")))
    assert t.satisfaction == 4 and t.satisfaction_status == "rated"


def test_given_a_caller_hanging_up_in_the_greeting_then_the_ticket_waits_for_the_ivr_record(
    tracker: CallTracker,
) -> None:
    events = recorded("hangup_in_greeting")
    changes = feed(tracker, events)  # the engine's record comes after the last hang-up
    assert [c.phase for c in changes] == ["opened"]
    record = ivr_record(events[0]["Linkedid"], keys=[], route="hangup", hung_up=True)
    t = tracker.ivr_record(record, float(events[-1]["Timestamp"]) + 0.05)[0].ticket
    assert t.disposition == "abandoned_ivr" and t.hangup_by == "caller"
    assert t.ivr.route == "hangup" and t.ivr.nodes == ["main/greeting", "main/menu"]
    assert not t.queued and t.wait_seconds is None


def test_given_no_ivr_record_ever_comes_then_the_sweep_closes_the_call_after_the_grace(tracker: CallTracker) -> None:
    events = recorded("hangup_in_greeting")
    feed(tracker, events)
    ended = float(events[-1]["Timestamp"])
    assert tracker.sweep(ended + IVR_GRACE / 2) == []
    [change] = tracker.sweep(ended + IVR_GRACE)
    assert change.ticket.disposition == "abandoned_ivr" and change.ticket.ivr.route == ""


def test_given_a_caller_hanging_up_in_the_queue_then_abandoned_in_queue_with_the_wait(tracker: CallTracker) -> None:
    events = recorded("abandoned_in_queue")
    linkedid = events[0]["Linkedid"]
    t = closed(feed(tracker, events, ivr_record(linkedid, keys=["0"], route="queue")))
    abandon = next(e for e in events if e["Event"] == "QueueCallerAbandon")
    join = next(e for e in events if e["Event"] == "QueueCallerJoin")
    assert t.disposition == "abandoned_queue" and t.queue == "general" and not t.answered
    assert t.wait_seconds == pytest.approx(float(abandon["Timestamp"]) - float(join["Timestamp"]), abs=0.01)
    assert t.hangup_by == "caller" and t.agents_rung  # a seat was rung, nobody answered


def test_given_the_engines_priority_decision_then_the_ticket_says_which_priority_and_why(tracker: CallTracker) -> None:
    events = recorded("abandoned_in_queue")
    linkedid = events[0]["Linkedid"]
    record = ivr_record(linkedid, keys=[], route="queue") | {
        "flow": "elderly", "elderly": True,
        "priority": {"priority": 10, "reason": "elderly", "reasons": ["elderly", "repeat"]},
    }
    t = closed(feed(tracker, events, record))
    assert (t.priority, t.priority_reason, t.priority_reasons, t.elderly) == (10, "elderly", ["elderly", "repeat"], True)
    assert Ticket.from_json(t.to_json()).priority_reasons == ["elderly", "repeat"]  # stored and read back


@pytest.mark.parametrize("marked, session", [("flood-recovery", "flood-recovery"), ("", ""),
                                             ("Flood; DROP", ""), (["flood"], "")])
def test_given_the_engines_leader_session_then_the_ticket_names_it_and_nothing_else(
        tracker: CallTracker, marked: object, session: str) -> None:
    events = recorded("abandoned_in_queue")
    t = closed(feed(tracker, events, ivr_record(events[0]["Linkedid"], keys=["6"], route="queue")
                    | {"leader_session": marked}))
    assert t.session == session and Ticket.from_json(t.to_json()).session == session


def test_given_the_tax_gateway_is_busy_then_transfer_failed_with_cause_and_the_fallback_queue_answer(
    tracker: CallTracker,
) -> None:
    events = recorded("tax_busy_then_answered")
    linkedid = events[0]["Linkedid"]
    last = float(events[-1]["Timestamp"])
    live = {e["Uniqueid"]: e["Channel"] for e in events if e["Event"] == "Newchannel"} 
    for e in events:
        if e["Event"] == "Hangup":
            live.pop(e["Uniqueid"], None)
    for n, (uid, channel) in enumerate(sorted(live.items(), key=lambda kv: kv[0] == linkedid)):
        events.append({"Event": "Hangup", "Timestamp": str(last + 5 + n), "Channel": channel, "Uniqueid": uid,
                       "Linkedid": linkedid, "Cause": "16", "Cause-txt": "Normal Clearing"})
    record = ivr_record(linkedid, keys=[], route="transfer") | {"dialed": "12366", "flow": "", "visits": []}
    t = closed(feed(tracker, events, record))
    [transfer] = t.transfers
    assert (transfer.kind, transfer.target, transfer.number, transfer.result) == ("subcenter", "tax", "12366", "BUSY")
    assert transfer.cause == "17 User busy" and transfer.then == "queue general"
    assert t.disposition == "transfer_failed" and t.after_transfer == "queue general: answered by agent1003"
    assert t.line == "12366" and t.line_mode == "subcenter" and t.agent == "agent1003"


def blind_transferred(tracker: CallTracker, *then: dict[str, str]) -> Ticket:
    """A recorded answered call whose agent blind-transfers it to 12360, ``then`` events after."""
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    connect = next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect")
    at = events[connect]["Timestamp"]
    events[connect + 1:connect + 1] = [
        {"Event": "BlindTransfer", "Timestamp": at, "TransfererLinkedid": linkedid, "Extension": "12360",
         "Context": "from-agents", "Result": "Success"},
        *({"Timestamp": at, "Uniqueid": linkedid, "Linkedid": linkedid, **e} for e in then)]
    return closed(feed(tracker, events, ivr_record(linkedid, keys=["1"], route="queue")))


def test_given_an_agent_blind_transfer_then_the_ticket_says_transferred(tracker: CallTracker) -> None:
    t = blind_transferred(tracker)
    assert t.disposition == "transferred" and t.transfers[0].kind == "blind" and t.transfers[0].number == "12360"


def test_given_an_agent_blind_transfer_to_a_closed_sub_center_then_its_own_attempt_says_closed(tracker: CallTracker) -> None:
    """Never dialed (no DialBegin): the dialplan's IvrTransfer is a new attempt, not the agent's move."""
    t = blind_transferred(tracker, {"Event": "UserEvent", "UserEvent": "IvrTransfer", "Trunk": "customs",
                                    "Number": "12360", "DialStatus": "CLOSED", "Fallback": "general"})
    blind, closed_attempt = t.transfers
    assert (blind.kind, blind.result) == ("blind", "Success")
    assert (closed_attempt.kind, closed_attempt.target, closed_attempt.number, closed_attempt.result,
            closed_attempt.then) == ("subcenter", "customs", "12360", "CLOSED", "queue general")


def test_given_a_reconnect_then_live_calls_are_adopted_and_gone_ones_reported_vanished(tracker: CallTracker) -> None:
    events = recorded("abandoned_in_queue")
    join = next(i for i, e in enumerate(events) if e["Event"] == "QueueCallerJoin")
    feed(tracker, events[:join + 1])  # followed until the AMI link dropped
    linkedid = events[0]["Linkedid"]
    other = {"Channel": "PJSIP/pstn-000000aa", "Uniqueid": "bed-9.1", "Linkedid": "bed-9.1", "Context": "ivr-queues",
             "Exten": "general", "CallerIDNum": "13900009999", "Application": "Queue",
             "ApplicationData": "q-general,tc,,,", "Duration": "00:00:20"}
    changes, vanished = tracker.adopt([other], known={}, now=float(events[join]["Timestamp"]) + 30)
    assert vanished == [linkedid]
    [opened] = changes
    assert opened.phase == "opened" and opened.ticket.caller == "13900009999" and opened.ticket.queue == "general"
    assert set(tracker.open_calls()) == {linkedid, "bed-9.1"}
    [visit, lost] = tracker.lose(linkedid, float(events[join]["Timestamp"]) + 60, "ended while AMI was down (no CDR)")
    assert visit.phase == "queue:general:1" and visit.visit and visit.visit.outcome == "lost" and visit.final
    assert lost.ticket.disposition == "error" and lost.ticket.closed_by == "lost"
    assert lost.ticket.hangup_cause == "ended while AMI was down (no CDR)"


def test_given_a_call_that_ran_while_no_engine_followed_then_its_cdr_makes_the_ticket(tracker: CallTracker) -> None:
    rows = [
        CdrRow("bed-1.0", "bed-1.0", "13900000005", "general", "ivr-queues", "PJSIP/pstn-00000000",
               "PJSIP/agent1001-00000001", "Queue", "2026-12-01 10:00:00", "2026-12-01 10:00:09",
               "2026-12-01 10:01:09", "69", "60", "ANSWERED", "12345", "fallback", "", "general", "", "5"),
        CdrRow("bed-1.0", "bed-1.0", "13900000005", "s", "ivr-survey", "PJSIP/pstn-00000000", "", "UserEvent",
               "2026-12-01 10:01:09", "2026-12-01 10:01:09", "2026-12-01 10:01:15", "6", "6", "ANSWERED", "12345",
               "fallback", "", "general", "", "5"),
    ]
    [visit, change] = tracker.finish("bed-1.0", rows, now=datetime(2026, 12, 1, 10, 5).timestamp())
    t = change.ticket
    assert change.phase == "closed" and t.closed_by == "cdr"
    # the one visit the CDR tells of, timed from the CDR (from the call's start: never too short)
    assert visit.phase == "queue:general:1" and t.queue_visits == [visit.visit]
    assert (visit.visit.outcome, visit.visit.agent, visit.visit.wait_seconds) == ("answered", "agent1001", 9.0)
    assert t.disposition == "answered" and t.agent == "agent1001" and t.talk_seconds == 60.0
    assert t.line == "12345" and t.caller == "13900000005" and t.satisfaction == 5
    assert t.ivr.route == "fallback" and t.ended.startswith("2026-12-01T10:01:15")


def test_channel_names_and_dialed_numbers() -> None:
    assert endpoint_of("PJSIP/agent1001-0000001a") == endpoint_of("PJSIP/agent1001") == "agent1001"
    assert endpoint_of("PJSIP/expert-hrss-00000002") == "expert-hrss"
    assert normalize_line("s") == "12345" and normalize_line("+12345") == "12345"


def test_the_engine_ami_filter_passes_exactly_the_events_the_tracker_the_seats_and_the_trunks_handle() -> None:
    from ivr.asterisk_conf import ENGINE_EVENTS
    from queues.agents import MEMBER_EVENTS
    from tracking.tracker import HANDLED_EVENTS
    from transfer.trunk_watch import TRUNK_EVENTS

    assert set(ENGINE_EVENTS) == HANDLED_EVENTS | MEMBER_EVENTS | TRUNK_EVENTS


def test_the_handled_events_are_the_ones_before_the_split() -> None:
    """The tracker split into modules (issue 18) handles exactly the events it did, plus
    ``Newstate`` (issue 20: a call's first sign that its dialplan runs): the engine's AMI filter
    and ivr.follow depend on this set."""
    from tracking.tracker import HANDLED_EVENTS

    assert HANDLED_EVENTS == frozenset({
        "AgentCalled", "AgentComplete", "AgentConnect", "AgentRingNoAnswer", "AttendedTransfer", "BlindTransfer",
        "DialBegin", "DialEnd", "FullyBooted", "Hangup", "HangupRequest", "Newchannel", "Newstate", "QueueCallerAbandon",
        "QueueCallerJoin", "QueueCallerLeave", "SoftHangupRequest", "UserEvent",
    })


# --- queue visits -------------------------------------------------------------------------------

def test_given_the_flow_or_the_agent_says_out_of_scope_then_the_ticket_has_the_matter_by_whom_and_when(
    tracker: CallTracker,
) -> None:
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    record = ivr_record(linkedid, keys=["0"], route="queue")
    record["started"] = "2026-12-01T10:00:00.000+08:00"
    record["visits"] = [{"flow": "main", "node": "told", "type": "out_of_scope", "at": 1.5}]
    record["variables"] = {"out_of_scope": "petition"}
    t = closed(feed(tracker, events, record))
    assert t.out_of_scope is not None and t.out_of_scope.at == "2026-12-01T10:00:01.500+08:00"
    assert (t.out_of_scope.matter, t.out_of_scope.title, t.out_of_scope.by) == ("petition", "信访", "ivr")
    assert Ticket.from_json(t.to_json()).out_of_scope == t.out_of_scope


def test_given_an_agent_keys_a_matter_then_the_callers_channels_event_marks_the_ticket(tracker: CallTracker) -> None:
    events = recorded("answered_rated")
    linkedid = events[0]["Linkedid"]
    connect = next(i for i, e in enumerate(events) if e.get("Event") == "AgentConnect")
    keyed = {"Event": "UserEvent", "UserEvent": "IvrOutOfScope", "Matter": "litigation", "Linkedid": linkedid,
             "Uniqueid": linkedid, "Agent": "PJSIP/agent1001-0000001a", "Timestamp": events[connect]["Timestamp"]}
    spoofed = dict(keyed, Uniqueid="other", Matter="arbitration")  # not the caller's channel: ignored
    t = closed(feed(tracker, [*events[:connect + 1], spoofed, keyed, *events[connect + 1:]],
                    ivr_record(linkedid, keys=["0"], route="queue")))
    assert t.out_of_scope is not None
    assert (t.out_of_scope.matter, t.out_of_scope.title, t.out_of_scope.by, t.out_of_scope.agent) == (
        "litigation", "诉讼", "agent", "agent1001")
    assert t.disposition == "answered"
