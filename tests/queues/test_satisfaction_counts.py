"""Satisfaction counted (queues/kpi.py, "satisfaction"): a closed ticket's survey becomes
increments for its queue, line and agent; written through the real ticket store into a real
redis-server they count once however often the close is written, and the report reads back the
rated share, the average and the share satisfied (4–5 of the 1–5 scale)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest

from queues import kpi
from tickets.model import Ticket
from tickets.store import TicketStore

NOW = datetime.now().astimezone()
ANSWERED = NOW - timedelta(minutes=10)


def closed(linkedid: str, status: str, rating: int | None = None, agent: str = "agent1001",
           queue: str = "general") -> Ticket:
    return Ticket(linkedid=linkedid, line="12345", caller="13900000001", received=(ANSWERED - timedelta(seconds=30)).isoformat(),
                  queue=queue, agent=agent, answered=ANSWERED.isoformat(), disposition="answered",
                  satisfaction=rating, satisfaction_status=status)


def test_a_rating_counts_for_its_queue_line_and_agent_and_4_or_5_is_satisfied_2_or_less_low() -> None:
    increments = {i.scope: (i.name, i.counters) for i in kpi.survey_increments(closed("1", "rated", 4), low=2, keep_days=400)}
    assert increments == {"queue": ("general", {"survey_offered": 1, "rated": 1, "rating_sum": 4, "satisfied": 1}),
                          "line": ("12345", {"survey_offered": 1, "rated": 1, "rating_sum": 4, "satisfied": 1}),
                          "agent": ("agent1001", {"survey_offered": 1, "rated": 1, "rating_sum": 4, "satisfied": 1})}
    [low] = {i.counters["rating_sum"]: i.counters for i in kpi.survey_increments(closed("2", "rated", 2), low=2,
                                                                                   keep_days=400)}.values()
    assert low == {"survey_offered": 1, "rated": 1, "rating_sum": 2, "low_rated": 1}
    three = kpi.survey_increments(closed("3", "rated", 3), low=3, keep_days=400)[0].counters
    assert three == {"survey_offered": 1, "rated": 1, "rating_sum": 3, "low_rated": 1}  # tickets.satisfaction_low: 3
    assert kpi.survey_increments(closed("4", "no_rating"), low=2, keep_days=400)[0].counters == {"survey_offered": 1}
    assert kpi.survey_increments(closed("5", "not_asked"), low=2, keep_days=400) == []


@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    store = TicketStore(redis_url, tmp_path / "spool", name="server-1", retention_days=30, timeout=0.5)
    yield store
    await store.close()


async def test_surveys_written_through_the_store_count_once_and_read_back_as_shares(tickets: TicketStore) -> None:
    calls = [closed("9.1", "rated", 5), closed("9.2", "rated", 4, agent="agent1002"), closed("9.3", "rated", 2),
             closed("9.4", "no_rating", agent="agent1002"), closed("9.5", "rated", 1, queue="expert-hrss")]
    for t in [*calls, calls[0], calls[2]]:  # a close written again (a replay, a second engine) counts once
        tickets.write_visit_nowait(t.linkedid, kpi.SURVEY_PHASE, kpi.survey_increments(t, low=2, keep_days=400))
    await tickets.drain()
    report = (await tickets.kpi_report(kpi.window("test", ANSWERED - timedelta(minutes=5), NOW, NOW)))["satisfaction"]
    general = report["queues"]["general"]
    assert {k: general[k] for k in kpi.SURVEY_COUNTERS} == {
        "survey_offered": 4, "rated": 3, "rating_sum": 11, "satisfied": 2, "low_rated": 1}
    assert (general["rated_share"], general["average"], general["satisfied_share"]) == (0.75, 3.67, 0.6667)
    assert report["queues"]["expert-hrss"]["average"] == 1.0 and report["queues"]["expert-hrss"]["satisfied_share"] == 0.0
    assert report["lines"]["12345"]["survey_offered"] == 5 and report["platform"]["rating_sum"] == 12
    assert (report["agents"]["agent1001"]["rated"], report["agents"]["agent1001"]["low_rated"]) == (3, 2)
    second = report["agents"]["agent1002"]
    assert (second["survey_offered"], second["rated"], second["average"], second["rated_share"]) == (2, 1, 4.0, 0.5)
    assert (await tickets.kpi_report(kpi.window("test", ANSWERED - timedelta(minutes=5), NOW, NOW)))["queues"] == {}


async def test_the_wallboards_narrowed_read_gives_an_agent_its_day_only_and_the_rest_every_label(
    tickets: TicketStore,
) -> None:
    t = closed("8.1", "rated", 5)
    tickets.write_visit_nowait(t.linkedid, kpi.SURVEY_PHASE, kpi.survey_increments(t, low=2, keep_days=400))
    await tickets.drain()
    day, fine = ANSWERED.strftime("%Y%m%d"), kpi.window("f", ANSWERED, ANSWERED + timedelta(seconds=1), NOW).labels[0]
    buckets = await tickets.kpi_buckets((day, fine), narrow={"agent": (day,)})
    assert buckets["agent:agent1001"] == {day: {"survey_offered": "1", "rated": "1", "rating_sum": "5", "satisfied": "1"}}
    assert list(buckets["queue:general"]) == [day, fine] and buckets["queue:general"][fine]["rating_sum"] == "5"
    assert list(buckets["line:12345"]) == [day, fine]
