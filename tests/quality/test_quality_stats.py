"""Averages and the daily sample, on tickets made here: the latest inspection of a call counts;
per agent and per queue the count, the average total, the pass rate and each item's average; the
sample is drawn per agent and day from recorded calls only, the same list every time for the same
calls (seeded by day and agent), scored calls marked, and it stays put as the day's calls grow."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from quality.model import Call, QualityItem, QualitySettings
from quality.sample import rank, sample
from quality.stats import by_agent, by_queue
from tickets.model import QualityScore, Recording, Ticket

RUBRIC = QualitySettings(items={"greeting": QualityItem(label="开场问候", points=10),
                                "accuracy": QualityItem(label="答复准确", points=40)}, pass_mark=40)
DAY = date(2026, 12, 3)
NOON = datetime(2026, 12, 3, 12, 0).astimezone()


def ticket(n: int, agent: str, queue: str = "general", *, recorded: bool = True, deleted: bool = False,
           scores: list[dict[str, int]] | None = None, at: datetime = NOON) -> Ticket:
    t = Ticket(linkedid=f"q.{n}", line="12345", caller="13900000000", received=(at + timedelta(minutes=n)).isoformat(),
               number=f"{at:%Y%m%d}-12345-{n:05d}", agent=agent, queue=queue, disposition="answered")
    if recorded:
        t.recordings = [Recording(file=f"x/{n}.opus", deleted="2026-12-04T00:00:00+08:00" if deleted else "")]
    for i, s in enumerate(scores or []):
        t.quality.append(QualityScore(by="zhao@console", at=f"2026-12-04T10:0{i}:00+08:00", scores=s,
                                      total=sum(s.values()), rubric_version="v"))
    return t


def test_per_agent_and_queue_the_latest_inspection_counts() -> None:
    calls = [Call.of(t) for t in (
        ticket(1, "agent1001", scores=[{"greeting": 2, "accuracy": 10}, {"greeting": 10, "accuracy": 40}]),  # 50, re-scored
        ticket(2, "agent1001", "expert-hrss", scores=[{"greeting": 5, "accuracy": 30}]),  # 35: fails
        ticket(3, "agent1002", scores=[{"greeting": 9, "accuracy": 36}]),  # 45
        ticket(4, "agent1002"),  # not inspected: not counted
        ticket(5, "agent1003", scores=[{"listening": 20}]),  # under an older rubric: its total counts, items do not
    )]
    agents = {r.name: r for r in by_agent(calls, RUBRIC)}
    assert list(agents) == ["agent1001", "agent1002", "agent1003"]
    a = agents["agent1001"]
    assert (a.count, a.average, a.pass_rate, a.items) == (2, 42.5, 0.5, {"greeting": 7.5, "accuracy": 35.0})
    b = agents["agent1002"]
    assert (b.count, b.average, b.pass_rate, b.items) == (1, 45.0, 1.0, {"greeting": 9.0, "accuracy": 36.0})
    c = agents["agent1003"]
    assert (c.count, c.average, c.pass_rate, c.items) == (1, 20.0, 0.0, {"greeting": None, "accuracy": None})
    queues = {r.name: r for r in by_queue(calls, RUBRIC)}
    assert (queues["general"].count, queues["general"].average) == (3, (50 + 45 + 20) / 3)
    assert (queues["expert-hrss"].count, queues["expert-hrss"].pass_rate) == (1, 0.0)
    assert a.to_json() == {"name": "agent1001", "count": 2, "average": 42.5, "pass_rate": 0.5,
                           "items": {"greeting": 7.5, "accuracy": 35.0}}


def test_nothing_inspected_gives_no_rows() -> None:
    assert by_agent([Call.of(ticket(1, "agent1001"))], RUBRIC) == []


def day_calls() -> list[Ticket]:
    """agent1001: eight recorded calls, one without a recording, one whose file retention deleted,
    one of the day before; agent1002: one recorded call, scored."""
    out = [ticket(n, "agent1001", scores=[{"greeting": 10, "accuracy": 40}] if n == 3 else None) for n in range(1, 9)]
    out += [ticket(20, "agent1001", recorded=False), ticket(21, "agent1001", deleted=True),
            ticket(22, "agent1001", at=NOON - timedelta(days=1)), ticket(30, "agent1002", scores=[{"greeting": 1, "accuracy": 1}])]
    return out


def test_the_sample_is_drawn_from_the_day_s_recorded_calls_by_a_seed_of_day_and_agent() -> None:
    calls = [Call.of(t) for t in day_calls()]
    picks = sample(calls, DAY, 3)
    assert sorted(picks) == ["agent1001", "agent1002"]
    numbers = [p.number for p in picks["agent1001"]]
    recorded_today = [t.number for t in day_calls()[:8]]
    expected = sorted(sorted(recorded_today, key=lambda n: rank(DAY, "agent1001", n))[:3])
    assert numbers == expected and len(numbers) == 3
    assert not {"20261203-12345-00020", "20261203-12345-00021", "20261202-12345-00022"} & set(numbers)
    assert [(p.number, p.scored, p.total) for p in picks["agent1002"]] == [("20261203-12345-00030", True, 2)]
    assert sample(list(reversed(calls)), DAY, 3) == picks  # the same list whatever order the tickets come in
    assert sample(calls, DAY + timedelta(days=1), 3) == {}  # another day, another list (here: no calls)


def test_a_scored_call_in_the_sample_is_marked_with_its_total() -> None:
    picks = sample([Call.of(t) for t in day_calls()], DAY, 8)["agent1001"]
    assert len(picks) == 8
    assert [(p.scored, p.total) for p in picks if p.number.endswith("00003")] == [(True, 50)]
    assert all(not p.scored and p.total is None for p in picks if not p.number.endswith("00003"))


def test_the_seed_is_the_day_and_the_agent() -> None:
    """Another day or another agent orders the same calls differently (over 8 calls: not by chance
    the same); the draw does not depend on Python's per-process string hashing."""
    numbers = [f"20261203-12345-{n:05d}" for n in range(1, 9)]
    order = sorted(numbers, key=lambda n: rank(DAY, "agent1001", n))
    assert order != sorted(numbers, key=lambda n: rank(DAY + timedelta(days=1), "agent1001", n))
    assert order != sorted(numbers, key=lambda n: rank(DAY, "agent1002", n))
    assert rank(DAY, "agent1001", numbers[0]) == hashlib.sha256(b"2026-12-03|agent1001|20261203-12345-00001").digest()


def test_a_later_call_of_the_day_changes_the_sample_by_at_most_one() -> None:
    calls = [Call.of(t) for t in day_calls()]
    before = {p.number for p in sample(calls, DAY, 3)["agent1001"]}
    after = {p.number for p in sample([*calls, Call.of(ticket(9, "agent1001"))], DAY, 3)["agent1001"]}
    assert len(before & after) >= 2
