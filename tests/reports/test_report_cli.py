"""``ivr stats report`` through the real CLI entry point against a real redis-server, on a host
clock at Asia/Shanghai (UTC+8): a scripted day of tickets written by the real TicketStore, with the
day before (for hot spots) and tickets a second either side of the day's midnights, must give the
hand-counted numbers in the CSV and in the XLSX (read back with openpyxl, charts present)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import openpyxl
import pytest

from ivr import cli
from tickets.model import Deadline, Ticket
from tickets.revisit import DONE
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
D = (datetime.now(CST) - timedelta(days=3)).date()
HYPERLINK = '=HYPERLINK("http://evil.example/","点我")'


def at(day: date, clock: str) -> str:
    return datetime.combine(day, datetime.strptime(clock, "%H:%M:%S").time(), CST).isoformat()


def closed_at(day: date) -> list[tuple[str, str, str]]:
    return [(at(day, "10:00:00"), "dept closed", "市住建局：答复：已处理")]


def call(n: str, received: str, *, line: str = "12345", queue: str = "general", kind: str = "consult",
         wait: float | None = None, answered: bool = True, dept: str = "", status: str = "accepted",
         due: str = "", rating: int | None = None, timeline: list[tuple[str, str, str]] | None = None,
         disposition: str = "") -> Ticket:
    t = Ticket(linkedid=f"rp.{n}", line=line, caller="13900000000", received=received, request_type=kind,
               queue=queue, queued=received if queue else "", wait_seconds=wait, department=dept, status=status,
               answered=received if answered else "", agent="agent1001" if answered else "",
               disposition=disposition or ("answered" if answered else "abandoned_queue"),
               deadline=Deadline(due=due, rule="3 working days") if due else None,
               satisfaction=rating, satisfaction_status="rated" if rating else "not_asked")
    for entry in timeline or []:
        t.note(*entry)
    return t


def tickets() -> list[Ticket]:
    day = D
    scripted = [
        call("a1", at(day, "09:00:00"), wait=10, rating=5),
        call("a2", at(day, "09:10:00"), kind="complaint", wait=20, dept="市住建局", status="closed",
             due=(day + timedelta(days=3)).isoformat(), rating=2,
             timeline=closed_at(day + timedelta(days=1)) + [(at(day + timedelta(days=2), "09:00:00"), DONE, "zhao@console：已回访")]),
        call("a3", at(day, "09:20:00"), kind="help", wait=40, dept="市住建局", status="closed", due=day.isoformat(),
             rating=1, timeline=closed_at(day + timedelta(days=2))),
        call("a4", at(day, "09:30:00"), wait=30, answered=False),
        call("a5", at(day, "09:40:00"), line="12319", queue="hrss", kind="suggestion", wait=15, dept=HYPERLINK,
             status="handling", due=(day + timedelta(days=1)).isoformat(), rating=4),
        call("a6", at(day, "09:50:00"), line="12319", queue="hrss", wait=None),
        call("a7", at(day, "10:00:00"), queue="", answered=False, disposition="abandoned_ivr"),
        call("a8", at(day, "00:00:00"), wait=5, rating=3),  # the day's first instant
    ]
    reports = [call(f"b{n}", at(day, f"11:{n:02d}:00"), queue="", kind="report", answered=False,
                    disposition="abandoned_ivr") for n in range(12)]
    before = [call("p1", at(day - timedelta(days=1), "12:00:00"), queue="", kind="report", answered=False,
                   disposition="abandoned_ivr"),
              call("p2", at(day - timedelta(days=1), "23:59:59"), wait=3)]  # a second before the day
    after = [call("n1", at(day + timedelta(days=1), "00:00:00"), queue="", kind="report", answered=False,
                  disposition="abandoned_ivr")]
    return scripted + reports + before + after


async def _seed(url: str, spool: Path) -> None:
    store = TicketStore(url, spool, "report-seed", retention_days=30, caller_key=b"report-cli-test-key")
    try:
        for t in tickets():
            await store.write(t, "closed")
        await store.drain()
    finally:
        await store.close()


@pytest.fixture
def seeded(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # the host's clock decides where a day ends, as in production
    time.tzset()
    try:
        asyncio.run(_seed(redis_url, tmp_path / "seed-spool"))
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


# the hand counts: (calls, offered, answered, ≤15 s, ≤30 s, abandoned, 直接答复, 派单, on time, late, overdue,
# 回访 due, done, rated, satisfied)
COUNTS = ("来电量", "进入排队", "人工接听", "15秒内接听", "30秒内接听", "排队放弃", "直接答复", "派单", "按时办结", "超时办结",
          "超期未办结", "应回访", "已回访", "参评数", "满意数")
EXPECTED = {
    "线路": {"12345": (18, 5, 4, 2, 3, 1, 2, 2, 1, 1, 0, 2, 1, 4, 1), "12319": (2, 2, 2, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1),
           "合计": (20, 7, 6, 3, 4, 1, 3, 3, 1, 1, 1, 2, 1, 5, 2)},
    "队列": {"（未排队）": (13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "general": (5, 5, 4, 2, 3, 1, 2, 2, 1, 1, 0, 2, 1, 4, 1),
           "hrss": (2, 2, 2, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1), "合计": (20, 7, 6, 3, 4, 1, 3, 3, 1, 1, 1, 2, 1, 5, 2)},
    "诉求类型": {"举报": (12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "咨询": (5, 4, 3, 2, 2, 1, 3, 0, 0, 0, 0, 0, 0, 2, 1),
             "建议": (1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1), "投诉": (1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0),
             "求助": (1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0), "合计": (20, 7, 6, 3, 4, 1, 3, 3, 1, 1, 1, 2, 1, 5, 2)},
    "承办单位": {"市住建局": (2, 2, 2, 0, 1, 0, 0, 2, 1, 1, 0, 2, 1, 2, 0), HYPERLINK: (1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1)},
}
HOT = [["诉求类型", "举报", 12, 1, 11, 12.0]]
ORDER = {"线路": ["12345", "12319", "合计"], "队列": ["（未排队）", "general", "hrss", "合计"],
         "诉求类型": ["举报", "咨询", "建议", "投诉", "求助", "合计"], "承办单位": ["市住建局", HYPERLINK]}


def report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> Path:
    out = tmp_path / f"report.{fmt}"
    code = cli.main(["--config", str(REPO / "config"), "stats", "report", "--period", "day", "--date", D.isoformat(),
                     "--format", fmt, "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    return out


def tables(rows: list[list[Any]]) -> dict[str, tuple[list[Any], list[list[Any]]]]:
    """The CSV's sections: 【title】, a heading row, rows up to a blank line."""
    found: dict[str, tuple[list[Any], list[list[Any]]]] = {}
    for i, row in enumerate(rows):
        if len(row) == 1 and row[0].startswith("【"):
            end = next((j for j in range(i + 2, len(rows)) if not rows[j]), len(rows))
            found[row[0].strip("【】")] = (rows[i + 1], rows[i + 2:end])
    return found


def counted(head: list[Any], rows: list[list[Any]], number: Any) -> dict[str, tuple[int, ...]]:
    return {str(r[0]): tuple(number(r[head.index(h)]) for h in COUNTS) for r in rows}


def test_a_scripted_day_gives_the_hand_counts_in_csv_and_xlsx(seeded: None, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    raw = report_file(tmp_path, capsys, "csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    sections = tables(list(csv.reader(io.StringIO(raw.decode("utf-8-sig")))))
    assert sections["热点"][1] == [[str(c) for c in HOT[0]]]
    for view, expected in EXPECTED.items():
        head, rows = sections[view]
        names = {("'" + n if n.startswith("=") else n): n for n in expected}
        got = {names[k]: v for k, v in counted(head, rows, int).items()}
        assert got == expected, view
        assert [names[str(r[0])] for r in rows] == ORDER[view], view
    total = sections["线路"][1][-1]
    assert (total[sections["线路"][0].index("15秒接通率")], total[sections["线路"][0].index("平均评分")]) == ("0.4286", "3.0")

    path = report_file(tmp_path, capsys, "xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["说明", "热点", "线路", "队列", "诉求类型", "承办单位"]
    assert D.isoformat() in str(book["说明"]["B1"].value) and "（UTC+8）" in str(book["说明"]["B2"].value)
    assert [[c.value for c in r] for r in book["热点"].iter_rows(min_row=2)] == HOT
    for view, expected in EXPECTED.items():
        sheet = [[c.value for c in r] for r in book[view].iter_rows()]
        assert counted(sheet[0], sheet[1:], lambda v: v if isinstance(v, int) else -1) == expected, view
        assert [r[0] for r in sheet[1:]] == ORDER[view]
    rate = [r for r in book["线路"].iter_rows(min_row=2) if r[0].value == "合计"][0][sheet[0].index("15秒接通率")]
    assert (rate.value, rate.number_format) == (pytest.approx(3 / 7), "0.0%")
    for name, rows in [("热点", 1), *((v, len([n for n in ORDER[v] if n != "合计"])) for v in EXPECTED)]:
        [chart] = book[name]._charts  # a bar chart per view over its named rows (not the total)
        assert (type(chart).__name__, chart.series[0].val.numRef.f) == ("BarChart", f"'{name}'!${'C' if name == '热点' else 'B'}$2"
                                                                     + (f":${'B'}${rows + 1}" if rows > 1 else "")), name


def test_the_text_report_and_a_bad_date(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--config", str(REPO / "config"), "stats", "report", "--date", D.isoformat()])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"日报 {D}") and "举报" in out and "市住建局" in out and "42.9%" in out
    code = cli.main(["--config", str(REPO / "config"), "stats", "report", "--date", D.isoformat(), "--format", "csv"])
    out = capsys.readouterr().out  # to standard output: a pipe into another tool
    assert code == 0 and out.startswith("\ufeff12345 热线统计报表,日报 ") and "【热点】" in out
    code = cli.main(["--config", str(REPO / "config"), "stats", "report", "--date", "2026-13-01"])
    assert code != 0 and "bad --date" in capsys.readouterr().err
