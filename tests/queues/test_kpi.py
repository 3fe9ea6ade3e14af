"""Service-level math (queues/kpi.py): what one ended queue visit adds to its queue's and its
line's buckets, and the report read back from bucket counters."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from queues import kpi
from tickets.model import QueueVisit, Ticket

T0 = datetime(2026, 12, 1, 9, 58, 30).astimezone()  # local; 09:55 is its 5-minute bucket


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def visit(queue: str, joined: float, wait: float | None, outcome: str, agent: str = "") -> QueueVisit:
    return QueueVisit(queue, at(joined), at(joined + (wait or 0)), outcome, wait, agent)


def ticket(*visits: QueueVisit, line: str = "12345") -> Ticket:
    return Ticket(linkedid="1.1", line=line, caller="13900000001", received=at(-20), queue_visits=list(visits))


def by_dimension(increments: list[kpi.Increment]) -> dict[str, dict[str, int]]:
    return {f"{i.scope}:{i.name}": i.counters for i in increments}


@pytest.mark.parametrize(("outcome", "wait", "expected"), [
    ("answered", 15.0, {"answered": 1, "answered_15": 1, "answered_30": 1, "answer_wait_ms": 15000}),
    ("answered", 15.001, {"answered": 1, "answered_30": 1, "answer_wait_ms": 15001}),
    ("answered", 31.0, {"answered": 1, "answer_wait_ms": 31000}),
    ("abandoned", 5.0, {"abandoned": 1, "abandoned_5": 1}),
    ("abandoned", 12.5, {"abandoned": 1}),
    ("overflowed", 20.0, {"overflowed": 1}),
    ("callback", 40.0, {"callbacks": 1}),
    ("lost", 3.0, {"lost": 1}),
])
def test_given_one_visit_then_its_queue_and_line_count_it_once_with_its_wait(
    outcome: str, wait: float, expected: dict[str, int],
) -> None:
    v = visit("general", 0, wait, outcome, "agent1001")
    counts = by_dimension(kpi.visit_increments(ticket(v), v, final=True, keep_days=400))
    wait_ms = round(wait * 1000)
    assert counts["queue:general"] == counts["line:12345"] == {
        "offered": 1, **expected, "wait_ms": wait_ms, "max_wait_ms": wait_ms}


def test_given_an_expert_call_that_overflows_then_is_answered_then_each_queue_counts_its_visit_and_the_line_the_call(
) -> None:
    expert = visit("expert-hrss", 0, 20.0, "overflowed")
    general = visit("general", 20.1, 3.0, "answered", "agent1001")
    t = ticket(expert, general, line="12333")
    first = by_dimension(kpi.visit_increments(t, expert, final=False, keep_days=400))
    then = by_dimension(kpi.visit_increments(t, general, final=True, keep_days=400))
    assert first == {"queue:expert-hrss": {"offered": 1, "overflowed": 1, "wait_ms": 20000, "max_wait_ms": 20000}}
    assert then["queue:general"] == {"offered": 1, "answered": 1, "answered_15": 1, "answered_30": 1,
                                     "answer_wait_ms": 3000, "wait_ms": 3000, "max_wait_ms": 3000}
    # the caller waited 23 s in all: answered on the line, within 30 s, not within 15 s
    assert then["line:12333"] == {"offered": 1, "answered": 1, "answered_30": 1, "answer_wait_ms": 23000,
                                  "wait_ms": 23000, "max_wait_ms": 23000}


def test_given_the_last_queue_left_unanswered_then_the_line_counts_the_call_as_offered_and_not_answered() -> None:
    expert = visit("expert-hrss", 0, 60.0, "overflowed")
    counts = by_dimension(kpi.visit_increments(ticket(expert), expert, final=True, keep_days=400))
    assert counts["line:12345"] == {"offered": 1, "overflowed": 1, "wait_ms": 60000, "max_wait_ms": 60000}


def test_given_a_second_queue_after_the_answer_then_the_line_does_not_count_the_call_again() -> None:
    general = visit("general", 0, 2.0, "answered", "agent1001")
    expert = visit("expert-hrss", 100, 4.0, "answered", "expert2001")  # the agent transferred the caller
    counts = by_dimension(kpi.visit_increments(ticket(general, expert), expert, final=True, keep_days=400))
    assert set(counts) == {"queue:expert-hrss"}


def test_given_an_answer_whose_wait_is_unknown_then_it_counts_as_answered_but_never_within_15_s() -> None:
    v = QueueVisit("general", at(0), at(0), "answered", None, "agent1001")  # picked up after a reconnect
    counts = by_dimension(kpi.visit_increments(ticket(v), v, final=True, keep_days=400))
    assert counts["queue:general"] == {"offered": 1, "answered": 1}


def test_given_a_visit_then_it_lands_in_the_5_minute_bucket_and_the_day_it_joined_with_their_expiry() -> None:
    v = visit("general", 0, 400.0, "answered")  # joined 09:58:30, answered in the next bucket
    [queue, _line] = kpi.visit_increments(ticket(v), v, final=True, keep_days=400)
    fine_start = datetime(2026, 12, 1, 9, 55).astimezone()
    midnight = datetime(2026, 12, 1).astimezone()
    assert queue.buckets == (
        kpi.Bucket("202612010955", int(fine_start.timestamp()) + kpi.FINE_KEEP_SECONDS),
        kpi.Bucket("20261201", int(midnight.timestamp()) + 401 * 86_400),
    )
    assert queue.fields().startswith("offered 1 answered 1 ")


def test_given_a_window_then_it_covers_5_minute_buckets_when_recent_and_whole_days_when_older() -> None:
    now = datetime(2026, 12, 1, 10, 7, 12).astimezone()
    hour = kpi.window("last_hour", now - timedelta(hours=1), now, now)
    assert hour.labels[0] == "202612010905" and hour.labels[-1] == "202612011005" and len(hour.labels) == 13
    assert hour.since == datetime(2026, 12, 1, 9, 5).astimezone() and hour.until == now
    old = kpi.window("day", datetime(2026, 11, 2, 8).astimezone(), datetime(2026, 11, 3).astimezone(), now)
    assert old.labels == ("20261102",) and old.bucket_seconds == 86_400
    assert [w.name for w in kpi.standard_windows(now)] == ["today", "last_hour", "last_24h"]
    assert len(kpi.standard_windows(now)[2].labels) == 24 * 12 + 1  # a 24-hour window starts at a bucket


def test_given_bucket_counters_then_the_report_sums_them_and_reads_off_the_rates() -> None:
    now = datetime(2026, 12, 1, 10, 7).astimezone()
    win = kpi.window("last_hour", now - timedelta(hours=1), now, now)
    buckets = {
        "queue:general": {
            "202612010910": {"offered": "3", "answered": "2", "answered_15": "1", "answered_30": "2",
                             "abandoned": "1", "abandoned_5": "1", "wait_ms": "40000", "answer_wait_ms": "36000",
                             "max_wait_ms": "20000"},
            "202612011005": {"offered": "1", "answered": "1", "answered_15": "1", "answered_30": "1",
                             "wait_ms": "2000", "answer_wait_ms": "2000", "max_wait_ms": "2000"},
            "202612010900": {"offered": "50", "answered": "50"},  # before the window
        },
        "line:12345": {"202612010910": {"offered": "4", "answered": "3", "max_wait_ms": "20000"}},
        "line:12333": {"202612010900": {"offered": "1"}},  # nothing in the window: left out
    }
    report = kpi.build_report(win, buckets)
    general = report["queues"]["general"]
    assert (general["offered"], general["answered"], general["answered_15"], general["abandoned"]) == (4, 3, 2, 1)
    assert general["answer_rate"] == 0.75 and general["answer_rate_15"] == 0.5 and general["abandon_rate"] == 0.25
    assert general["avg_wait_s"] == 10.5 and general["avg_answer_s"] == 12.7 and general["longest_wait_s"] == 20.0
    assert list(report["lines"]) == ["12345"] and report["platform"]["offered"] == 4
    empty = kpi.build_report(win, {})
    assert empty["queues"] == {} and empty["platform"]["answer_rate"] is None
