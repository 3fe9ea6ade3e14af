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
