"""`ivr stats` against a real redis-server holding the counters of a few queue visits: today,
the last hour and the last 24 h by default, one day or a range on request, JSON for the wallboard;
and the order inversions across nodes and the seat collisions counted from a few tickets
(queues/order.py, docs/cluster.md "Longest waiting caller across nodes"): on a platform of one node
it says none can exist instead of printing a measured-looking 0."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr import cli
from tickets.store import TicketStore
from queues import kpi
from testbed.configs import with_two_nodes
from tickets.model import QueueVisit, SeatCollision, Ticket

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

START = NOW - timedelta(minutes=20)  # the order tickets: in the last hour


def answered(n: int, node: str, queued: float, connected: float, agent: str) -> Ticket:
    """A call of ``node`` that joined the general queue ``queued`` s after START and was answered."""
    joined, at = START + timedelta(seconds=queued), START + timedelta(seconds=connected)
    visit = QueueVisit("general", joined.isoformat(), at.isoformat(), "answered", connected - queued, agent)
    return Ticket(linkedid=f"{node}-1796000000.{n}", line="12345", caller=f"1390000000{n}",
                  received=(joined - timedelta(seconds=5)).isoformat(), queued=joined.isoformat(),
                  answered=at.isoformat(), ended=(at + timedelta(seconds=30)).isoformat(), queue="general",
                  agent=agent, queue_visits=[visit], disposition="answered", priority=0)


def order_tickets() -> list[Ticket]:
    """Caller 1 waits on ast-b from 0 s; caller 2 (ast-a, 10 s) is answered at 20 s: overtook it by
    10 s; caller 1 then at 40 s; caller 3 (ast-b, 25 s) at 50 s: nobody waited earlier elsewhere.
    Caller 2's node rang agent1001 first and the proxy turned it away (taken on ast-b)."""
    first, second, third = (answered(1, "ast-b", 0, 40, "agent1002"), answered(2, "ast-a", 10, 20, "agent1001"),
                            answered(3, "ast-b", 25, 50, "agent1001"))
    second.seat_collisions = [SeatCollision("agent1001", (START + timedelta(seconds=19.5)).isoformat())]
    return [first, second, third]


async def _seed(url: str, spool: Path) -> None:
    store = TicketStore(url, spool, "seed", retention_days=30, timeout=1.0, caller_key=b"stats-test-key")
    try:
        for n, (joined, queue, line, outcome, wait) in enumerate(VISITS):
            visit = QueueVisit(queue, joined.isoformat(), (joined + timedelta(seconds=wait)).isoformat(), outcome, wait)
            t = Ticket(linkedid=f"9.{n}", line=line, caller="13900000001", received=joined.isoformat(),
                       queue_visits=[visit])
            store.write_visit_nowait(t.linkedid, f"queue:{queue}:1",
                                     kpi.visit_increments(t, visit, final=True, keep_days=400))
        for t in order_tickets():  # for the order inversions and collisions (below)
            await store.write(t, "closed")
        await store.drain()
    finally:
        await store.close()


@pytest.fixture(autouse=True)
def seeded(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    asyncio.run(_seed(redis_url, tmp_path / "seed-spool"))


def run(capsys: pytest.CaptureFixture[str], *argv: str, config: Path = REPO / "config") -> tuple[int, str, str]:
    code = cli.main(["--config", str(config), "stats", *argv])
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


# --- order inversions across nodes and seat collisions (queues/order.py) ---------------------

@pytest.fixture
def cluster_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    return with_two_nodes(config)


def stats(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> str:
    code, out, err = run(capsys, *argv, config=config)
    assert code == 0, err
    return out


def test_given_two_nodes_then_the_inversions_per_day_and_queue_and_the_collisions_per_seat(
    capsys: pytest.CaptureFixture[str], cluster_config: Path,
) -> None:
    reports = {r["window"]: r for r in json.loads(stats(capsys, cluster_config, "--json"))["reports"]}
    order = reports["last_hour"]["order"]
    assert order["across_nodes"] and order["nodes"] == ["ast-a", "ast-b"]
    assert order["queues"] == [{"day": (START + timedelta(seconds=20)).strftime("%Y-%m-%d"), "queue": "general",
                                "answered": 3, "inverted": 1, "share": 0.3333, "largest_jump_s": 10.0}]
    assert order["collisions"] == {"agent1001": 1}
    hour_ago = NOW.replace(microsecond=0) - timedelta(hours=1)  # a range that ends before the answers: none counted
    text = stats(capsys, cluster_config, "--since", (hour_ago - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
                 "--until", hour_ago.strftime("%Y-%m-%dT%H:%M"))
    assert "（无接通 no answers）" in text and "seat collisions (486 at once: the seat taken on another node): 无 none" in text


def test_given_the_table_then_a_row_per_day_and_queue_under_its_window(
    capsys: pytest.CaptureFixture[str], cluster_config: Path,
) -> None:
    blocks = stats(capsys, cluster_config).split("\n\n")
    hour = next(b for b in blocks if b.startswith("近1小时 last hour") and "跨节点排队顺序倒置" in b).splitlines()
    assert hour[1] == "跨节点排队顺序倒置 order inversions across nodes (ast-a, ast-b):"
    assert hour[3].split()[1:] == ["general", "3", "1", "33.3%", "10.0s"]
    assert hour[-1].endswith(": agent1001 1")


def test_given_one_node_then_no_inversion_is_printed_as_measured_and_collisions_still_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports = json.loads(stats(capsys, REPO / "config", "--json"))["reports"]
    assert all(not r["order"]["across_nodes"] and r["order"]["queues"] == [] for r in reports)
    assert reports[1]["order"]["collisions"] == {"agent1001": 1}
    text = stats(capsys, REPO / "config")
    assert "单节点平台，按定义不存在（未测量）" in text and "inverted" not in text
