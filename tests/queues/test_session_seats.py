"""Who the leader queue rings (领导接听, queues/sessions.py ``held_queues``): exactly the seats of the
session on now, nobody between sessions, at the windows' edges and across midnight; when the rule
changes by itself (``next_edge``); and the plans that hold a seat there (queues/wish.py) without
undoing the agent's own pause or touching its other queues. Local times: the host's zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest

from ivr.config import load_config
from queues.seat_applier import unheld_in
from queues.sessions import LEADER_QUEUE, SESSION_REASON, LeaderSession, held_queues, next_edge
from queues.wish import Change, Member, SeatWish, Step, apply, hold, plan, wanted

HELD = {LEADER_QUEUE: SESSION_REASON}
NODE = "127.0.0.1:5038"


def session(day: date, window: str, *seats: str) -> LeaderSession:
    return LeaderSession(topic="汛后恢复重建", day=day, time=window, prompt="p", seats=seats)


SESSIONS = {
    "morning": session(date(2026, 12, 1), "09:00-10:00", "leader3001"),
    "noon": session(date(2026, 12, 1), "10:00-11:00", "leader3002"),  # starts as the morning one ends
    "late": session(date(2026, 12, 1), "23:30-00:30", "leader3001", "leader3002"),  # into 12-02
}


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second).astimezone()


@pytest.mark.parametrize(("now", "rung"), [
    (at(1, 8, 59, 59), set()),  # before every session: nobody
    (at(1, 9, 0), {"leader3001"}),  # the start is in the window
    (at(1, 9, 59, 59), {"leader3001"}),
    (at(1, 10, 0), {"leader3002"}),  # the end is not: the next session's seats at once
    (at(1, 11, 0), set()),
    (at(1, 23, 30), {"leader3001", "leader3002"}),
    (at(2, 0, 29, 59), {"leader3001", "leader3002"}),  # past midnight, still on
    (at(2, 0, 30), set()),
])
def test_the_leader_queue_rings_exactly_the_seats_of_the_session_on_now(now: datetime, rung: set[str]) -> None:
    for seat in ("leader3001", "leader3002", "agent1001"):
        assert held_queues(SESSIONS, seat, now) == ({} if seat in rung else HELD), (seat, now)


def test_with_no_session_configured_every_seat_is_held_in_the_leader_queue() -> None:
    assert held_queues({}, "leader3001", at(1, 9, 30)) == HELD


@pytest.mark.parametrize(("now", "edge"), [
    (at(1, 8, 0), at(1, 9, 0)),
    (at(1, 9, 0), at(1, 10, 0)),  # on its start: its end is next
    (at(1, 10, 30), at(1, 11, 0)),
    (at(1, 23, 59), at(2, 0, 30)),
    (at(2, 0, 30), None),  # nothing ahead
])
def test_the_rule_changes_by_itself_only_at_a_sessions_start_or_end(now: datetime, edge: datetime | None) -> None:
    assert next_edge(SESSIONS, now) == edge


def leader_wish(**changes: object) -> SeatWish:
    wish = apply(SeatWish("leader3001"), Change("login", 100.0, queues={LEADER_QUEUE: 0, "general": 10}))
    assert wish is not None
    return replace(wish, **changes)  # type: ignore[arg-type]


IN_BOTH = {LEADER_QUEUE: Member(0, False, ""), "general": Member(10, False, "")}


def test_given_a_seat_outside_its_session_then_it_is_paused_in_the_leader_queue_only() -> None:
    want, _ = wanted(leader_wish(), NODE, 200.0, HELD)
    assert plan(want, IN_BOTH) == [Step("pause", LEADER_QUEUE, reason=SESSION_REASON)]  # general untouched
    assert plan(want, {}) == [Step("add", "general", penalty=10),  # joins held: no call slips in first
                              Step("add", LEADER_QUEUE, penalty=0, paused=True),
                              Step("pause", LEADER_QUEUE, reason=SESSION_REASON)]


def test_given_its_session_starts_then_the_hold_is_lifted_but_not_the_agents_own_pause() -> None:
    held = {LEADER_QUEUE: Member(0, True, SESSION_REASON), "general": Member(10, False, "")}
    assert plan(wanted(leader_wish(), NODE, 200.0, {})[0], held) == [Step("unpause", LEADER_QUEUE)]
    own = leader_wish(paused=True, reason="小休", pause_at=150.0)
    mine = {LEADER_QUEUE: Member(0, True, "小休"), "general": Member(10, True, "小休")}
    assert plan(wanted(own, NODE, 200.0, {})[0], mine) == []  # on: still paused, as the agent chose
    assert plan(wanted(own, NODE, 200.0, HELD)[0], mine) == []  # held: its own reason shows, not undone


def test_given_a_seat_without_a_wish_then_only_the_hold_is_applied_and_its_own_pause_stands() -> None:
    assert hold(IN_BOTH, HELD, SESSION_REASON) == [Step("pause", LEADER_QUEUE, reason=SESSION_REASON)]
    held = {LEADER_QUEUE: Member(0, True, SESSION_REASON)}
    assert hold(held, {}, SESSION_REASON) == [Step("unpause", LEADER_QUEUE)]
    assert hold(held, HELD, SESSION_REASON) == []
    own = {LEADER_QUEUE: Member(0, True, "小休")}
    assert hold(own, {}, SESSION_REASON) == [] and hold(own, HELD, SESSION_REASON) == []
    assert hold({}, HELD, SESSION_REASON) == []  # never joins a queue for it


def test_given_a_seat_joined_or_unpaused_where_it_is_held_then_the_applier_looks_at_it_again() -> None:
    settings = load_config(Path(__file__).resolve().parents[2] / "config", environ={}).settings
    now = at(1, 9, 30).timestamp()  # the shipped config has no session: every leader seat is held
    added = {"Event": "QueueMemberAdded", "Queue": "q-leader", "Interface": "PJSIP/leader3001", "Paused": "0"}
    assert unheld_in(added, settings, now) == "leader3001"
    assert unheld_in({**added, "Event": "QueueMemberPause"}, settings, now) == "leader3001"
    assert unheld_in({**added, "Paused": "1"}, settings, now) is None  # held already
    assert unheld_in({**added, "Queue": "q-general", "Interface": "PJSIP/agent1001"}, settings, now) is None
    assert unheld_in({**added, "Interface": "PJSIP/stranger"}, settings, now) is None
    assert unheld_in({**added, "Event": "QueueMemberStatus"}, settings, now) is None
