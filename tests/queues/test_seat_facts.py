"""The node's seat facts the applier turns into wish changes (queues/seat_applier.py): the
dialplan's ``UserEvent(IvrSeat)`` and app_queue's ``AgentComplete``; every value is checked
against the configuration, so a forged or odd event changes nothing, and a wish whose values
are not configured never reaches an AMI header."""

from __future__ import annotations

from pathlib import Path

from ivr.config import load_config
from queues.seat_applier import change_of, checked, members_of
from queues.wish import WRAPUP_REASON, Change, Member, Wanted

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load_config(REPO / "config", environ={}).settings
NODE = "127.0.0.1:5038"


def seat_event(**fields: str) -> dict[str, str]:
    return {"Event": "UserEvent", "UserEvent": "IvrSeat", "Timestamp": "1796000000.250000", **fields}


def test_given_a_log_in_from_the_softphone_then_the_change_carries_the_seats_queues_and_penalties() -> None:
    assert change_of(seat_event(Action="login", Seat="expert2001"), SETTINGS, NODE) == (
        "expert2001", Change("login", 1796000000.25, queues={"expert-hrss": 0, "general": 10}))


def test_given_a_pause_with_a_configured_reason_then_it_is_a_pause_change() -> None:
    assert change_of(seat_event(Action="pause", Seat="agent1001", Reason="用餐"), SETTINGS, NODE) == (
        "agent1001", Change("pause", 1796000000.25, reason="用餐"))


def test_given_forged_or_odd_seat_events_then_none_changes_a_wish() -> None:
    hostile = [
        seat_event(Action="login", Seat="agent9999"),  # not a configured seat
        seat_event(Action="login", Seat="agent1001\r\nAction: Originate"),
        seat_event(Action="pause", Seat="agent1001", Reason="小休\r\nAction: Originate"),  # not a configured reason
        seat_event(Action="pause", Seat="agent1001", Reason=""),
        seat_event(Action="wrapup", Seat="agent1001"),  # only app_queue's AgentComplete starts a wrap-up
        seat_event(Action="reboot", Seat="agent1001"),
        {"Event": "UserEvent", "UserEvent": "IvrCallback", "Action": "login", "Seat": "agent1001"},
    ]
    assert [change_of(e, SETTINGS, NODE) for e in hostile] == [None] * len(hostile)


def test_given_a_call_completed_then_the_wrap_up_ends_after_the_queues_wrap_up_time_on_this_node() -> None:
    event = {"Event": "AgentComplete", "Queue": "q-general", "Interface": "PJSIP/agent1001", "MemberName": "agent1001",
             "Timestamp": "1796000100.000000"}
    wrapup = SETTINGS.queues["general"].wrapup
    assert wrapup > 0
    assert change_of(event, SETTINGS, NODE) == ("agent1001", Change("wrapup", 1796000100.0,
                                                                  until=1796000100.0 + wrapup, node=NODE))
    assert change_of(dict(event, Queue="q-nosuch"), SETTINGS, NODE) is None
    assert change_of(dict(event, MemberName="agent9999", Interface="PJSIP/agent9999"), SETTINGS, NODE) is None


def test_given_a_wish_with_values_not_configured_then_it_is_not_applied() -> None:
    assert checked(Wanted({"general": 0}, True, "用餐"), SETTINGS) is not None
    assert checked(Wanted({"general": 0}, True, WRAPUP_REASON), SETTINGS) is not None
    assert checked(Wanted({"general\r\nAction: Originate": 0}, False, ""), SETTINGS) is None
    assert checked(Wanted({"general": 0}, True, "x\r\nAction: Originate"), SETTINGS) is None


def test_given_queue_status_rows_then_each_configured_agent_gets_its_memberships() -> None:
    rows = [{"Event": "QueueMember", "Queue": "q-general", "Location": "PJSIP/agent1001", "Penalty": "0", "Paused": "1",
             "PausedReason": "小休"},
            {"Event": "QueueMember", "Queue": "q-general", "Location": "PJSIP/stranger", "Penalty": "0", "Paused": "0"}]
    assert members_of(rows, {"agent1001": None, "agent1002": None}) == {
        "agent1001": {"general": Member(0, True, "小休")}, "agent1002": {}}
