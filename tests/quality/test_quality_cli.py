"""``ivr stats quality`` and ``ivr stats quality-sample`` through the real CLI entry point against a
real redis-server: tickets written by the real TicketStore with recordings, scored through the
same write the console uses (quality/store.py), then read back as averages and the day's sample."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr import cli
from ivr.config import load_config
from quality.model import check_scores
from quality.store import add_inspection
from tickets.model import Recording, Ticket
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
DAY = (datetime.now() - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0).astimezone()
RUBRIC = load_config(REPO / "config", environ={}).settings.quality
# (agent, queue, recorded, scores given one after the other: greeting, listening, accuracy, attitude, ticket_type)
CALLS = [
    ("agent1001", "general", True, [(10, 20, 40, 20, 10)]),
    ("agent1001", "general", True, [(2, 5, 10, 5, 0), (8, 16, 30, 16, 8)]),  # re-scored: 78 counts, not 22
    ("agent1001", "expert-hrss", True, []),
    ("agent1002", "general", True, [(5, 10, 20, 10, 5)]),
    ("agent1002", "general", False, []),  # no recording: never sampled
]


async def _seed(url: str, spool: Path) -> list[str]:
    store = TicketStore(url, spool, "quality-seed", retention_days=30, caller_key=b"quality-cli-test-key")
    numbers = []
    try:
        for n, (agent, queue, recorded, _scores) in enumerate(CALLS):
            t = Ticket(linkedid=f"qc.{n}", line="12345", caller="13900000000", received=(DAY + timedelta(minutes=n)).isoformat(),
                       agent=agent, queue=queue, disposition="answered",
                       recordings=[Recording(file=f"2026/x/{n}.opus", seconds=30.0)] if recorded else [])
            await store.write(t, "closed")
        await store.drain()
        for n, (_agent, _queue, _recorded, scores) in enumerate(CALLS):
            for points in scores:
                form = {name: str(p) for name, p in zip(RUBRIC.items, points)}
                await add_inspection(store, f"qc.{n}", check_scores(RUBRIC, form, "好"), RUBRIC, "zhao@console")
            numbers.append((await store.get(f"qc.{n}")).number)  # type: ignore[union-attr]
    finally:
        await store.close()
    return numbers


@pytest.fixture
def numbers(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    return asyncio.run(_seed(redis_url, tmp_path / "seed-spool"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(REPO / "config"), "stats", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_averages_per_agent_and_queue_count_the_latest_score(numbers: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    day = DAY.date().isoformat()
    code, out, err = run(capsys, "quality", "--from", day, "--to", day, "--json")
    assert code == 0, err
    report = json.loads(out)
    agents = {a["name"]: a for a in report["agents"]}
    assert agents["agent1001"] == {"name": "agent1001", "count": 2, "average": 89.0, "pass_rate": 0.5,
                                   "items": {"greeting": 9.0, "listening": 18.0, "accuracy": 35.0, "attitude": 18.0,
                                             "ticket_type": 9.0}}
    assert (agents["agent1002"]["count"], agents["agent1002"]["average"], agents["agent1002"]["pass_rate"]) == (1, 50.0, 0.0)
    assert [(q["name"], q["count"], q["average"]) for q in report["queues"]] == [("general", 3, 76.0)]
    assert report["total"] == 100 and report["pass_mark"] == 80
    code, out, _err = run(capsys, "quality", "--from", day, "--to", day)  # the same as text
    assert code == 0 and "agent1001" in out and "89.0" in out and "50.0%" in out and "答复准确" in out
    before = (DAY - timedelta(days=1)).date().isoformat()
    code, out, _err = run(capsys, "quality", "--from", before, "--to", before)
    assert code == 0 and out.count("无质检记录") == 2


def test_the_day_s_sample_offers_recorded_calls_and_marks_the_scored(numbers: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "quality-sample", "--date", DAY.date().isoformat(), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["per_agent"] == 2 and sorted(report["agents"]) == ["agent1001", "agent1002"]
    assert [(p["number"], p["scored"], p["total"]) for p in report["agents"]["agent1002"]] == [(numbers[3], True, 50)]
    mine = report["agents"]["agent1001"]
    assert len(mine) == 2 and {p["number"] for p in mine} <= set(numbers[:3])
    totals = {numbers[0]: 100, numbers[1]: 78, numbers[2]: None}
    assert all(p["total"] == totals[p["number"]] and p["scored"] == (totals[p["number"]] is not None) for p in mine)
    again = json.loads(run(capsys, "quality-sample", "--date", DAY.date().isoformat(), "--json")[1])
    assert again == report  # reproducible: a second supervisor sees the same list
    code, out, _err = run(capsys, "quality-sample", "--date", DAY.date().isoformat())
    assert code == 0 and numbers[3] in out and "已评分 scored 50" in out


def test_bad_dates_are_one_line_and_exit_2(numbers: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "quality", "--from", "yesterday")
    assert code == 2 and "bad --from 'yesterday'" in err
    code, _out, err = run(capsys, "quality", "--from", "2026-12-05", "--to", "2026-12-01")
    assert code == 2 and "--to 2026-12-01 is before --from 2026-12-05" in err
