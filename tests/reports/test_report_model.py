"""The report's pure parts: periods cut at local midnight of UTC+8 (day, Monday-first week,
month, year, and the period before), hot spots at their thresholds (the seeds' Hefei office saw
one category grow twelvefold in a year), and a name that starts like a formula staying text in
both files."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest

from ivr.config import ConfigError, load_config
from reports.files import csv_bytes, xlsx_bytes
from reports.model import HotSpot, Report, ReportSettings, Tally, hot_spots, period
from tickets.model import Ticket

REPO = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
UTC = timezone.utc


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("kind, day, first, after, title", [
    ("day", date(2026, 12, 1), "2026-11-30 16:00", "2026-12-01 16:00", "日报 2026-12-01"),
    ("week", date(2026, 12, 3), "2026-11-29 16:00", "2026-12-06 16:00", "周报 2026-11-30 – 2026-12-06"),
    ("week", date(2027, 1, 1), "2026-12-27 16:00", "2027-01-03 16:00", "周报 2026-12-28 – 2027-01-03"),
    ("month", date(2028, 2, 29), "2028-01-31 16:00", "2028-02-29 16:00", "月报 2028-02"),
    ("month", date(2026, 12, 31), "2026-11-30 16:00", "2026-12-31 16:00", "月报 2026-12"),
    ("year", date(2026, 6, 15), "2025-12-31 16:00", "2026-12-31 16:00", "年报 2026"),
])
def test_a_period_runs_from_local_midnight_at_utc_plus_8(kind: str, day: date, first: str, after: str, title: str) -> None:
    p = period(kind, day, CST)
    assert (p.start, p.end, p.title, p.zone) == (utc(first), utc(after), title, "UTC+8")
    before = p.previous()
    assert before.end == p.start and before.kind == kind and before.start < p.start


def test_the_period_before_a_month_or_a_year_is_the_whole_one() -> None:
    assert period("month", date(2026, 3, 31), CST).previous().title == "月报 2026-02"
    assert period("year", date(2026, 1, 1), CST).previous().start == utc("2024-12-31 16:00")
    with pytest.raises(ValueError, match="unknown period"):
        period("quarter", date(2026, 1, 1), CST)


SETTINGS = ReportSettings(hotspot_ratio=2, hotspot_min_increase=10)


@pytest.mark.parametrize("before, now, hot", [
    (40, 480, True),  # twelvefold: Hefei's special report
    (1, 12, True),
    (10, 20, True),  # exactly ×2 and +10
    (10, 19, False),  # ×1.9
    (20, 39, False),  # +19 but under ×2
    (5, 14, False),  # ×2.8 but only +9
    (0, 10, True),  # new, and +10
    (0, 9, False),
    (30, 30, False),
])
def test_a_hot_spot_needs_both_the_ratio_and_the_increase(before: int, now: int, hot: bool) -> None:
    found = hot_spots({"type": Counter({"举报": now}), "department": Counter()},
                      {"type": Counter({"举报": before}), "department": Counter()}, SETTINGS)
    assert found == ([HotSpot("type", "举报", now, before)] if hot else [])


def test_hot_spots_cover_departments_too_and_come_largest_increase_first() -> None:
    now = {"type": Counter({"投诉": 30, "咨询": 100}), "department": Counter({"市住建局": 240, "市城管局": 12})}
    before = {"type": Counter({"投诉": 2, "咨询": 90}), "department": Counter({"市住建局": 20})}
    assert [(h.view, h.name, h.ratio) for h in hot_spots(now, before, SETTINGS)] == [
        ("department", "市住建局", 12.0), ("type", "投诉", 15.0), ("department", "市城管局", None)]
    strict = ReportSettings(hotspot_ratio=20, hotspot_min_increase=1)
    assert [h.name for h in hot_spots(now, before, strict)] == ["市城管局"]


FORMULA = '=HYPERLINK("http://evil.example/","点我")'


def test_a_name_that_looks_like_a_formula_stays_text_in_csv_and_xlsx() -> None:
    p = period("day", date(2026, 12, 1), CST)
    tally = Tally(datetime(2026, 12, 2, tzinfo=CST), 2)
    tally.add([Ticket(linkedid=f"f.{n}", line="12345", caller="13900000000", received="2026-12-01T10:00:00+08:00",
                      department=FORMULA, queue="-general", request_type="complaint") for n in range(11)])
    report = Report(p, tally, hot_spots(tally.volumes(), {}, SETTINGS), datetime(2026, 12, 2, tzinfo=CST))
    text = csv_bytes(report)
    assert text.startswith(b"\xef\xbb\xbf")
    cells = [c for row in csv.reader(io.StringIO(text.decode("utf-8-sig"))) for c in row]
    assert "'" + FORMULA in cells and FORMULA not in cells and "'-general" in cells
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(report)))
    names = [(c.value, c.data_type) for sheet in ("承办单位", "热点") for c in book[sheet]["A"] + book[sheet]["B"]
             if c.value == FORMULA]
    assert names == [(FORMULA, "s"), (FORMULA, "s")]  # the department's row and its hot spot: text, not formulas
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(report))) as z:
        assert not any(b"<f>" in z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))


def test_the_shipped_thresholds_load_and_a_bad_one_is_refused_with_file_and_line(tmp_path: Path) -> None:
    assert load_config(REPO / "config", environ={}).settings.reports == ReportSettings(hotspot_ratio=2, hotspot_min_increase=10)
    (tmp_path / "reports.yaml").write_text("# thresholds\nreports:\n  hotspot_ratio: 0.5\n")
    with pytest.raises(ConfigError, match=r"reports.yaml:3:18: reports.hotspot_ratio: Input should be greater than or equal to 1"):
        load_config(tmp_path, environ={})


def test_leader_sessions_get_rows_only_when_tickets_carry_one() -> None:
    """A platform whose tickets carry ``session`` (领导接听) gets a view of its sessions; one whose
    tickets do not shows no such view at all (the field is set here as such a ticket has it)."""
    p = period("day", date(2026, 12, 1), CST)
    plain = [Ticket(linkedid=f"s.{n}", line="12345", caller="13900000000", received="2026-12-01T10:00:00+08:00",
                    queue="leader", answered="2026-12-01T10:00:05+08:00", wait_seconds=5.0) for n in range(3)]
    without = Tally(datetime(2026, 12, 2, tzinfo=CST), 2)
    without.add(plain)
    assert "session" not in without.shown()
    report = Report(p, without, [], datetime(2026, 12, 2, tzinfo=CST))
    assert "领导接听场次" not in csv_bytes(report).decode("utf-8-sig")
    assert "领导接听场次" not in openpyxl.load_workbook(io.BytesIO(xlsx_bytes(report))).sheetnames
    for t, session in zip(plain, ("flood-recovery", "flood-recovery", "")):
        t.session = session  # type: ignore[attr-defined]
    tally = Tally(datetime(2026, 12, 2, tzinfo=CST), 2)
    tally.add(plain)
    assert [(name, row.calls, row.answered_15) for name, row in tally.sorted("session")] == [("flood-recovery", 2, 2)]
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(Report(p, tally, [], datetime(2026, 12, 2, tzinfo=CST)))))
    sheet = [[c.value for c in r] for r in book["领导接听场次"].iter_rows()]
    assert [r[:2] for r in sheet] == [["领导接听场次", "来电量"], ["flood-recovery", 2]]  # no total: not every ticket is in one
    assert len(book["领导接听场次"]._charts) == 1
