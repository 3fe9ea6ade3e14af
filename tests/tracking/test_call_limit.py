"""A call Asterisk refuses before its dialplan runs (``maxcalls``: "Failed to start PBX (call limit
reached)", 503 to the proxy, which the next node answers) makes no ticket on the refusing node;
every call whose dialplan ran still makes exactly one, however early it ends (issue 20)."""

from __future__ import annotations

from typing import Any

from tracking.tracker import CallTracker
from tracker_helpers import closed, feed, ivr_record, recorded


def arrival(linkedid: str = "ast-a-1796160916.2") -> dict[str, str]:
    """The Newchannel of a citizen's INVITE (recorded on the bed), as Asterisk sends it before it
    checks ``maxcalls``."""
    event = dict(recorded("hangup_in_greeting")[0])
    event.update(Uniqueid=linkedid, Linkedid=linkedid, SystemName="ast-a")
    return event


def hangup(newchannel: dict[str, str], cause: str, cause_txt: str, **fields: Any) -> dict[str, str]:
    """The caller channel's Hangup; by default still where Newchannel put it (nothing ran)."""
    ts = f"{float(newchannel['Timestamp']) + 0.0004:.6f}"
    return {**newchannel, "Event": "Hangup", "Timestamp": ts, "Cause": cause, "Cause-txt": cause_txt, **fields}


def up(newchannel: dict[str, str]) -> dict[str, str]:
    """The answer in ``[ivr-answer]``: the channel's Newstate to Up."""
    ts = f"{float(newchannel['Timestamp']) + 0.01:.6f}"
    return {**newchannel, "Event": "Newstate", "Timestamp": ts, "ChannelState": "6", "ChannelStateDesc": "Up",
            "Context": "ivr-answer", "Priority": "9"}


def test_given_a_call_refused_at_the_call_limit_then_no_ticket_is_opened_or_closed(tracker: CallTracker) -> None:
    new = arrival()
    changes = feed(tracker, [new, hangup(new, "42", "Switching equipment congestion")])
    assert changes == [] and tracker.open_calls() == []
    assert tracker.sweep(float(new["Timestamp"]) + 60) == []  # nothing left to close later either


def test_given_the_arrival_alone_then_nothing_is_written_until_the_dialplan_runs(tracker: CallTracker) -> None:
    new = arrival()
    assert tracker.handle(new) == [] and tracker.open_calls() == [new["Linkedid"]]
    [opened] = tracker.handle(up(new))
    assert opened.phase == "opened" and opened.ticket.linkedid == new["Linkedid"]
    assert tracker.handle(up(new)) == []  # once


def test_given_the_dialplan_ran_then_a_congestion_cause_still_closes_one_ticket(tracker: CallTracker) -> None:
    new = arrival()
    rec = ivr_record(new["Linkedid"], keys=[], route="hangup", hung_up=True)
    t = closed(feed(tracker, [new, up(new), hangup(new, "42", "Switching equipment congestion", Context="ivr-answer",
                                                    Priority="12")], rec))
    assert t.disposition == "abandoned_ivr"


def test_given_a_caller_gone_before_any_other_event_with_another_cause_then_one_ticket(tracker: CallTracker) -> None:
    """Not refused by Asterisk (cause 16, or 42 after the first step): opened and closed as before."""
    for cause, fields in (("16", {}), ("42", {"Priority": "2"}), ("42", {"Context": "ivr-answer"})):
        new = arrival(f"ast-a-1796160916.{cause}{len(fields)}{fields.get('Priority', '')}")
        changes = feed(tracker, [new, hangup(new, cause, "x", **fields)])
        assert [c.phase for c in changes] == ["opened"]  # closed once the IVR record came or the grace ran out
        [done] = tracker.sweep(float(new["Timestamp"]) + 60)
        assert done.phase == "closed" and done.ticket.linkedid == new["Linkedid"]


def test_given_the_ivr_record_before_the_answer_event_then_it_opens_the_ticket(tracker: CallTracker) -> None:
    new = arrival()
    tracker.handle(new)
    changes = tracker.ivr_record(ivr_record(new["Linkedid"], keys=["1"], route="queue"), float(new["Timestamp"]) + 1)
    assert [c.phase for c in changes] == ["opened"]


def test_given_a_reconnect_with_the_call_up_then_its_ticket_is_opened(tracker: CallTracker) -> None:
    new = arrival()
    tracker.handle(new)
    live = {**new, "Event": "CoreShowChannel", "Context": "ivr-answer", "Duration": "00:00:02"}
    changes, vanished = tracker.adopt([live], {}, float(new["Timestamp"]) + 2)
    assert [c.phase for c in changes] == ["opened"] and vanished == []
