"""The seat wish's rules (queues/wish.py): the sequence, late writers, wrap-up against a pause
the agent chose, and the plan that makes one node's app_queue match; the compare-and-set
store on a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from ivr.store import keyspace
from queues.wish import WRAPUP_REASON, Change, Member, Refused, SeatWish, Step, apply, plan, wanted
from queues.wish_store import SeatWishes

A, B = "127.0.0.1:5038", "127.0.0.1:6038"
QUEUES = {"general": 10, "expert-hrss": 0}


def logged_in(at: float = 100.0) -> SeatWish:
    wish = apply(SeatWish("expert2001"), Change("login", at, queues=QUEUES))
    assert wish is not None
    return wish


def test_given_a_log_in_then_the_wish_holds_its_queues_unpaused() -> None:
    wish = logged_in()
    assert (wish.logged_in, wish.queues, wish.paused, wish.login_at) == (True, QUEUES, False, 100.0)


def test_given_a_logout_after_a_login_when_the_login_arrives_late_then_the_logout_stands() -> None:
    wish = apply(logged_in(100.0), Change("logout", 120.0))
    assert wish is not None and not wish.logged_in
    assert apply(wish, Change("login", 110.0, queues=QUEUES)) is None  # older than the logout


def test_given_a_pause_after_an_unpause_when_the_unpause_arrives_late_then_the_pause_stands() -> None:
    paused = apply(logged_in(), Change("pause", 130.0, reason="用餐"))
    assert paused is not None and (paused.paused, paused.reason) == (True, "用餐")
    assert apply(paused, Change("unpause", 125.0)) is None
    unpaused = apply(paused, Change("unpause", 131.0))
    assert unpaused is not None and not unpaused.paused and unpaused.reason == ""


def test_given_a_seat_never_logged_in_through_a_wish_then_its_pauses_write_nothing() -> None:
    assert apply(SeatWish("agent1001"), Change("pause", 100.0, reason="小休")) is None


def test_given_a_seat_logged_out_by_its_wish_then_a_pause_is_refused() -> None:
    out = apply(logged_in(100.0), Change("logout", 110.0))
    assert out is not None
    with pytest.raises(Refused, match="not logged in"):
        apply(out, Change("pause", 120.0, reason="小休"))


def test_given_a_paused_seat_logs_out_and_in_then_it_is_unpaused_and_out_of_wrap_up() -> None:
    wish = apply(logged_in(100.0), Change("pause", 101.0, reason="会议"))
    assert wish is not None
    wish = apply(wish, Change("wrapup", 102.0, until=107.0, node=A))
    assert wish is not None and wish.wrap_until == 107.0
    out = apply(wish, Change("logout", 103.0))
    assert out is not None
    back = apply(out, Change("login", 104.0, queues=QUEUES))
    assert back is not None and (back.paused, back.wrap_until) == (False, 0.0)


def test_given_the_same_login_twice_then_the_second_changes_nothing_and_keeps_the_pause() -> None:
    paused = apply(logged_in(100.0), Change("pause", 101.0, reason="培训"))
    assert paused is not None
    assert apply(paused, Change("login", 102.0, queues=QUEUES)) is None


def test_given_a_call_ended_on_a_then_b_pauses_the_seat_for_wrap_up_and_a_does_not() -> None:
    wish = apply(logged_in(), Change("wrapup", 200.0, until=205.0, node=A))
    assert wish is not None
    on_b, wake = wanted(wish, B, 201.0)
    assert (on_b.paused, on_b.reason, wake) == (True, WRAPUP_REASON, 205.0)
    on_a, wake_a = wanted(wish, A, 201.0)  # app_queue's own wrapuptime holds on A
    assert (on_a.paused, wake_a) == (False, 0.0)
    after, wake = wanted(wish, B, 205.0)
    assert (after.paused, wake) == (False, 0.0)


def test_given_the_agent_pauses_during_wrap_up_then_the_pause_outlives_the_wrap_up() -> None:
    wish = apply(logged_in(), Change("wrapup", 200.0, until=205.0, node=A))
    assert wish is not None
    wish = apply(wish, Change("pause", 202.0, reason="小休"))
    assert wish is not None
    for now in (203.0, 210.0):
        on_b, wake = wanted(wish, B, now)
        assert (on_b.paused, on_b.reason, wake) == (True, "小休", 0.0)


def test_given_the_agent_unpauses_after_the_call_then_the_wrap_up_ends_at_once() -> None:
    wish = apply(logged_in(), Change("pause", 150.0, reason="小休"))
    assert wish is not None
    wish = apply(wish, Change("wrapup", 200.0, until=205.0, node=A))
    assert wish is not None
    ready = apply(wish, Change("unpause", 201.0))
    assert ready is not None and ready.wrap_until == 0.0
    assert not wanted(ready, B, 202.0)[0].paused
    # an unpause that happened before the call ended (its event came late) keeps the wrap-up
    early = apply(wish, Change("unpause", 199.0))
    assert early is not None and not early.paused and early.wrap_until == 205.0
    assert wanted(early, B, 202.0)[0].reason == WRAPUP_REASON


def test_given_a_late_wrap_up_then_the_newer_one_stands() -> None:
    wish = apply(logged_in(), Change("wrapup", 300.0, until=305.0, node=B))
    assert wish is not None
    assert apply(wish, Change("wrapup", 200.0, until=205.0, node=A)) is None
    assert apply(logged_in(400.0), Change("wrapup", 300.0, until=305.0, node=A)) is None  # before this log-in


def test_given_a_node_missing_a_queue_and_holding_an_extra_one_then_the_plan_adds_removes_and_pauses() -> None:
    want = wanted(apply(logged_in(), Change("pause", 150.0, reason="用餐")) or SeatWish("x"), B, 151.0)[0]
    members = {"general": Member(10, False, ""), "agri": Member(0, False, "")}
    assert plan(want, members) == [
        Step("remove", "agri"),
        Step("add", "expert-hrss", penalty=0, paused=True), Step("pause", "expert-hrss", reason="用餐"),
        Step("pause", "general", reason="用餐"),
    ]


def test_given_a_wrong_penalty_or_a_stale_pause_then_the_plan_fixes_them_and_nothing_else() -> None:
    want = wanted(logged_in(), A, 101.0)[0]
    members = {"general": Member(5, False, ""), "expert-hrss": Member(0, True, "后处理")}
    assert plan(want, members) == [
        Step("unpause", "expert-hrss"), Step("remove", "general"), Step("add", "general", penalty=10),
    ]
    right = {"general": Member(10, False, ""), "expert-hrss": Member(0, False, "")}
    assert plan(want, right) == []


def test_given_a_logged_out_wish_then_the_plan_removes_every_membership() -> None:
    out = apply(logged_in(), Change("logout", 200.0))
    assert out is not None
    assert plan(wanted(out, A, 201.0)[0], {"general": Member(10, True, "小休")}) == [Step("remove", "general")]


def test_given_a_json_round_trip_then_the_wish_is_the_same() -> None:
    wish = apply(logged_in(), Change("wrapup", 200.0, until=205.0, node=A))
    assert wish is not None and SeatWish.from_json(wish.to_json()) == wish


async def test_given_writers_racing_on_one_seat_then_seq_counts_every_change_and_none_is_lost(redis_url: str) -> None:
    wishes = SeatWishes(redis_url)
    try:
        assert await wishes.change("agent1001", Change("login", 100.0, queues={"general": 0})) is not None
        reasons = ["小休", "用餐", "培训", "会议"]
        results = await asyncio.gather(*(wishes.change("agent1001", Change("pause", 101.0 + i, reason=r))
                                         for i, r in enumerate(reasons)))
        stored = await wishes.get("agent1001")
        accepted = [w for w in results if w is not None]
        # each accepted change got its own seq; the newest pause (by its time) is the one kept
        assert sorted(w.seq for w in accepted) == list(range(2, 2 + len(accepted)))
        assert stored.seq == 1 + len(accepted) and stored.reason == "会议" and stored.pause_at == 104.0
        assert await wishes.change("agent1001", Change("unpause", 102.5)) is None  # late: refused, seq kept
        assert (await wishes.get("agent1001")).seq == stored.seq
        assert list(await wishes.all()) == ["agent1001"]
    finally:
        await wishes.close()


async def test_given_a_wish_change_then_its_notice_names_the_seat(redis_url: str) -> None:
    wishes = SeatWishes(redis_url)
    pubsub = wishes.redis.pubsub()
    try:
        await pubsub.subscribe(keyspace.SEAT_WISH_CHANGED)
        await wishes.change("expert2001", Change("logout", 100.0))
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                break
        assert message is not None and message["data"] == "expert2001"
    finally:
        await pubsub.aclose()
        await wishes.close()
