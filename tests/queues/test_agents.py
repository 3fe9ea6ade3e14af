"""The seat board: Asterisk's queue-member facts in, one state per agent out."""

from __future__ import annotations

from queues.agents import AgentBoard, Seat

NOW = 1_796_000_000.0


def member(event: str, agent: str, queue: str = "q-general", **fields: str) -> dict[str, str]:
    base = {"Event": event, "Queue": queue, "Interface": f"PJSIP/{agent}", "MemberName": agent, "Penalty": "0",
            "Paused": "0", "PausedReason": "", "Status": "1", "InCall": "0", "LastCall": "0", "Wrapuptime": "0",
            "CallsTaken": "0", "LoginTime": str(int(NOW))}
    return base | fields


def board() -> AgentBoard:
    return AgentBoard(["agent1001", "expert2001"], lambda q: q.removeprefix("q-"))


def test_given_log_in_to_two_queues_then_the_seat_is_available_in_both_with_their_penalties() -> None:
    b = board()
    assert b.seats["expert2001"].state(NOW) == "logged_out"
    b.handle(member("QueueMemberAdded", "expert2001", "q-expert-hrss"), NOW)
    changed = b.handle(member("QueueMemberAdded", "expert2001", Penalty="10"), NOW)
    assert [s.agent for s in changed] == ["expert2001"]
    seat = b.seats["expert2001"]
    assert seat.state(NOW) == "available"
    assert {q: m.penalty for q, m in seat.queues.items()} == {"expert-hrss": 0, "general": 10}


def test_given_a_pause_with_a_reason_then_paused_and_the_reason_shown_until_unpaused() -> None:
    b = board()
    b.handle(member("QueueMemberAdded", "agent1001"), NOW)
    b.handle(member("QueueMemberPause", "agent1001", Paused="1", PausedReason="用餐"), NOW)
    data = b.seats["agent1001"].to_json(NOW)
    assert (data["state"], data["reason"]) == ("paused", "用餐")
    b.handle(member("QueueMemberPause", "agent1001", Paused="0", PausedReason="用餐"), NOW)
    assert b.seats["agent1001"].to_json(NOW)["reason"] == ""  # a stale reason is not a pause


def test_given_device_states_then_ringing_talking_wrapup_and_unreachable_follow() -> None:
    b = board()
    b.handle(member("QueueMemberStatus", "agent1001", Status="6"), NOW)
    assert b.seats["agent1001"].state(NOW) == "ringing"
    b.handle(member("QueueMemberStatus", "agent1001", Status="2", InCall="1"), NOW)
    assert b.seats["agent1001"].state(NOW) == "talking"
    b.handle(member("QueueMemberStatus", "agent1001", Status="1", LastCall=str(int(NOW)), Wrapuptime="5"), NOW)
    seat = b.seats["agent1001"]
    assert seat.state(NOW + 4) == "wrapup" and seat.state(NOW + 6) == "available"  # computed when read
    b.handle(member("QueueMemberStatus", "agent1001", Status="5"), NOW)
    assert b.seats["agent1001"].state(NOW) == "unreachable"


def test_given_a_member_without_its_own_wrapuptime_then_its_queues_wrap_up_holds_and_its_json_says_how_long() -> None:
    """app_queue's rule: the member's Wrapuptime if set, else the queue's (our members have none);
    the board read the member's 0 and a desk never left 后处理 nor showed it."""
    b = AgentBoard(["agent1001"], lambda q: q.removeprefix("q-"), {"general": 5})
    b.handle(member("QueueMemberStatus", "agent1001", Status="1", LastCall=str(int(NOW)), Wrapuptime="0"), NOW)
    seat = b.seats["agent1001"]
    assert (seat.state(NOW + 4), seat.state(NOW + 6)) == ("wrapup", "available")
    assert seat.to_json(NOW + 1.5)["wrapup_left"] == 3.5 and seat.to_json(NOW + 6)["wrapup_left"] == 0.0
    b.handle(member("QueueMemberStatus", "agent1001", Status="1", LastCall=str(int(NOW)), Wrapuptime="9"), NOW)
    assert b.seats["agent1001"].state(NOW + 8) == "wrapup"  # the member's own, where it has one
    b.set_agents(["agent1001"], {"general": 0})
    b.reconcile([member("QueueMember", "agent1001", LastCall=str(int(NOW)))], NOW)
    assert b.seats["agent1001"].state(NOW + 1) == "available"  # a reload's wrap-up counts from then on


def test_given_a_reconnect_then_the_queue_status_snapshot_replaces_what_was_known() -> None:
    b = board()
    b.handle(member("QueueMemberAdded", "agent1001"), NOW)
    b.handle(member("QueueMemberAdded", "expert2001"), NOW)
    # QueueStatus names members as Name/Location; expert2001 logged out while nobody listened
    row = {k: v for k, v in member("QueueMember", "agent1001", Paused="1", PausedReason="会议").items()
           if k not in ("Interface", "MemberName")} | {"Location": "PJSIP/agent1001", "Name": "agent1001"}
    changed = b.reconcile([row, member("QueueMember", "stranger")], NOW + 1)
    assert sorted(s.agent for s in changed) == ["agent1001", "expert2001"]
    assert b.seats["agent1001"].state(NOW) == "paused" and b.seats["expert2001"].state(NOW) == "logged_out"
    assert b.reconcile([row], NOW + 2) == []  # nothing new: nothing to write


def test_a_seat_survives_its_json_and_a_reload_keeps_known_seats() -> None:
    b = board()
    b.handle(member("QueueMemberAdded", "agent1001", CallsTaken="3"), NOW)
    again = Seat.from_json(b.seats["agent1001"].to_json(NOW))
    assert again == b.seats["agent1001"]
    b.set_agents(["agent1001", "agent1004"])
    assert b.seats["agent1001"].queues and b.seats["agent1004"].state(NOW) == "logged_out"
    assert "expert2001" not in b.seats
