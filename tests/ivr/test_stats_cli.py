"""`ivr stats` against a real redis-server holding the counters of a few queue visits: today,
the last hour and the last 24 h by default, one day or a range on request, JSON for the wallboard."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr import cli
from tickets.store import TicketStore
from queues import kpi
from tickets.model import QueueVisit, Ticket

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now().astimezone()
TEN_DAYS_AGO = (NOW - timedelta(days=10)).replace(hour=10, minute=0, second=0, microsecond=0)
# (joined, queue, line, outcome, wait s)
VISITS = [
    (NOW - timedelta(minutes=3), "general", "12345", "answered", 4.0),
    (NOW - timedelta(minutes=2), "general", "12345", "abandoned", 2.0),
    (NOW - timedelta(minutes=1), "expert-hrss", "12333", "answered", 20.0),
    (NOW - timedelta(hours=3), "general", "12345", "answered", 40.0),
    (TEN_DAYS_AGO, "general", "12345", "abandoned", 9.0),
]


async def _seed(url: str, spool: Path) -> None:
    store = TicketStore(url, spool, "seed", retention_days=30, timeout=1.0)
    try:
        for n, (joined, queue, line, outcome, wait) in enumerate(VISITS):
            visit = QueueVisit(queue, joined.isoformat(), (joined + timedelta(seconds=wait)).isoformat(), outcome, wait)
            t = Ticket(linkedid=f"9.{n}", line=line, caller="13900000001", received=joined.isoformat(),
                       queue_visits=[visit])
            store.write_visit_nowait(t.linkedid, f"queue:{queue}:1",
                                     kpi.visit_increments(t, visit, final=True, keep_days=400))
        await store.drain()
    finally:
        await store.close()


@pytest.fixture(autouse=True)
def seeded(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    asyncio.run(_seed(redis_url, tmp_path / "seed-spool"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(REPO / "config"), "stats", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reports(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, dict]:  # type: ignore[type-arg]
    code, out, err = run(capsys, "--json", *argv)
    assert code == 0, err
    return {r["window"]: r for r in json.loads(out)["reports"]}


def offered(report: dict, queue: str) -> int:  # type: ignore[type-arg]
    return int(report["queues"].get(queue, {}).get("offered", 0))


def test_given_no_options_then_today_the_last_hour_and_the_last_24_hours(capsys: pytest.CaptureFixture[str]) -> None:
    r = reports(capsys)
    assert list(r) == ["today", "last_hour", "last_24h"]
    hour = r["last_hour"]
    assert offered(hour, "general") == 2 and offered(hour, "expert-hrss") == 1
    general = hour["queues"]["general"]
    assert (general["answered"], general["answered_15"], general["abandoned"], general["abandoned_5"]) == (1, 1, 1, 1)
    assert general["answer_rate_15"] == 0.5 and general["longest_wait_s"] == 4.0
    assert hour["lines"]["12333"]["answered_30"] == 1 and hour["lines"]["12333"]["answered_15"] == 0
    assert hour["platform"]["offered"] == 3 and hour["platform"]["answer_rate"] == 0.6667
    day = r["last_24h"]
    assert offered(day, "general") == 3 and day["queues"]["general"]["longest_wait_s"] == 40.0
    assert day["platform"]["answer_rate"] == 0.75  # the 24-hour answer rate
    midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    assert offered(r["today"], "general") == sum(1 for j, q, *_ in VISITS if q == "general" and j >= midnight)


def test_given_an_older_day_or_a_range_then_that_window_only(capsys: pytest.CaptureFixture[str]) -> None:
    [old] = reports(capsys, "--day", TEN_DAYS_AGO.date().isoformat()).values()
    assert old["bucket_seconds"] == 86_400 and offered(old, "general") == 1
    assert old["queues"]["general"]["abandoned"] == 1 and old["queues"]["general"]["abandoned_5"] == 0
    since = (NOW - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    until = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    [window] = reports(capsys, "--since", since, "--until", until).values()
    assert offered(window, "general") == 1 and window["queues"]["general"]["answered_30"] == 0


def test_given_the_table_then_one_row_per_queue_and_line_with_the_15_second_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _err = run(capsys)
    assert code == 0
    hour = out.split("\n\n")[1].splitlines()
    assert hour[0].startswith("近1小时 last hour: ") and "15秒接通率" in hour[1]
    rows = {line.split()[1]: line.split() for line in hour[2:]}
    assert set(rows) == {"expert-hrss", "general", "12333", "12345", "all"}
    assert rows["general"][2:6] == ["2", "1", "1", "1"] and "50.0%" in rows["general"]


@pytest.mark.parametrize("argv", [["--day", "2026-12-01", "--since", "2026-12-01"], ["--day", "yesterday"],
                                  ["--until", "2026-12-01"], ["--since", "2026-12-02", "--until", "2026-12-01"]])
def test_given_bad_options_then_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1 and err.startswith("ivr stats: ")
