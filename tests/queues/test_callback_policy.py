"""The callback policy: bounded attempts, the next one after retry_after, done when answered."""

from __future__ import annotations

from ivr.core.callerid import CallerSettings
from queues import callback as policy
from queues.callback import CallbackRequest
from queues.model import Callback

RULES = Callback(after=30, attempts=3, retry_after=60)


def request() -> CallbackRequest:
    return CallbackRequest(linkedid="a.1", number="13900000001", queue="general", queued_at="100.5", priority=5)


def test_an_attempt_not_answered_schedules_the_next_until_the_last_fails() -> None:
    r = request()
    assert (r.status, r.attempt) == ("pending", 1)
    policy.placed(r)
    assert (r.status, r.attempt) == ("placed", 1)
    policy.result(r, "BUSY", "agent1001", 1000.0, RULES)
    assert (r.status, r.next_at, r.attempt) == ("pending", 1060.0, 2)
    policy.placed(r)
    policy.result(r, "NOANSWER", "agent1002", 1100.0, RULES)
    policy.placed(r)
    policy.result(r, "CONGESTION", "agent1001", 1200.0, RULES)
    assert r.status == "failed" and [a["result"] for a in r.attempts] == ["BUSY", "NOANSWER", "CONGESTION"]


def test_an_answered_attempt_ends_the_callback_and_it_survives_redis_as_json() -> None:
    r = request()
    policy.placed(r)
    policy.dialing(r, "13900000001", "agent1003", 990.0)
    assert r.attempt == 1  # still the first attempt while its leg is dialed
    policy.answered(r)
    policy.result(r, "ANSWER", "agent1003", 1000.0, RULES)
    assert r.status == "answered"
    assert CallbackRequest.from_json(r.to_json()) == r
    assert policy.ticket_view(r) == {"queue": "general", "number": "13900000001", "status": "answered", "attempts": [
        {"attempt": 1, "at": 990.0, "number": "13900000001", "agent": "agent1003", "result": "ANSWER",
         "answered": True, "ended": 1000.0}]}


def test_an_attempt_that_never_dialed_is_a_leg_without_a_number() -> None:
    r = request()
    policy.placed(r)
    policy.result(r, "GONE", "", 1000.0, RULES)
    assert r.attempts == [{"attempt": 1, "at": 1000.0, "number": "", "agent": "", "result": "GONE", "answered": False,
                           "ended": 1000.0}]
    assert (r.status, r.attempt) == ("pending", 2)


def test_only_a_callable_number_in_a_queue_with_callbacks_is_honoured() -> None:
    callers, queues = CallerSettings(), frozenset({"general"})
    assert policy.refusal(callers, queues, "13900000001", "general") == ""
    assert policy.refusal(callers, queues, "00441234567890", "general") == policy.NOT_CALLABLE
    assert policy.refusal(callers, queues, "13900000001", "vip") == policy.NO_CALLBACK


def test_a_leg_reads_as_one_line_for_ivr_tickets_show() -> None:
    leg = {"attempt": 2, "at": 0, "number": "139****0001", "agent": "agent1001", "result": "NOANSWER", "answered": False}
    assert policy.leg_text(leg) == "callback leg 2: 139****0001 by agent1001 at ?: NOANSWER"
    assert policy.leg_text({"attempt": 1, "number": "", "result": "GONE"}) == "callback leg 1: no number dialed at ?: GONE"


def test_a_stand_in_the_node_refused_is_retried_after_retry_after_without_using_up_an_attempt() -> None:
    """Asterisk refusing the stand-in (its maxcalls) is the node's doing, not the citizen's: the
    leg says so, the next try waits retry_after, and the citizen still gets every attempt."""
    r = request()
    policy.placed(r)
    policy.result(r, policy.NODE_BUSY, "", 1000.0, RULES)
    assert (r.status, r.next_at, r.attempt) == ("pending", 1060.0, 2)
    assert r.attempts[0]["reason"] == policy.NODE_BUSY_TEXT and r.attempts[0]["number"] == ""
    assert policy.leg_text(r.attempts[0]).endswith(f"NODE_BUSY ({policy.NODE_BUSY_TEXT})")
    for at, status in ((1100.0, "NOANSWER"), (1200.0, policy.NODE_BUSY), (1300.0, "BUSY")):
        policy.placed(r)
        policy.result(r, status, "", at, RULES)
        assert r.status == "pending"  # two of the three attempts used
    policy.placed(r)
    policy.result(r, "NOANSWER", "", 1400.0, RULES)
    assert r.status == "failed" and r.reason == ""
    assert [a["result"] for a in r.attempts] == ["NODE_BUSY", "NOANSWER", "NODE_BUSY", "BUSY", "NOANSWER"]


def test_a_node_that_never_takes_the_stand_in_gives_the_callback_up_after_busy_tries_with_the_reason() -> None:
    r = request()
    for n in range(policy.BUSY_TRIES):
        assert r.status == "pending", n
        policy.placed(r)
        policy.result(r, policy.NODE_BUSY, "", 1000.0 + n, RULES)
    assert (r.status, r.reason) == ("failed", policy.BUSY_GIVEN_UP)


def test_stand_ins_start_only_while_the_node_keeps_its_headroom_for_callers() -> None:
    assert policy.stand_in_room(None, 10, 500) is None  # no maxcalls: Asterisk takes any number
    assert policy.stand_in_room(30, 10, 4) == 8  # two calls each: 4 + 16 = 20 = 30 - 10
    assert policy.stand_in_room(30, 10, 19) == 0  # one free call above the headroom is not a stand-in's two
    assert policy.stand_in_room(30, 10, 18) == 1
    assert policy.stand_in_room(30, 10, 30) == 0 and policy.stand_in_room(30, 10, 45) == 0
