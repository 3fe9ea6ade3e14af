"""Handling deadlines: Chinese working days with 调休, provisional years, crisis hours, the CLI."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from ivr import cli
from ivr.config import TicketSettings
from ivr.core.calendar import LibraryData, library_data, load_calendar
from tickets.deadline import handling_deadline, provisional_years
from tickets.model import Deadline

REPO = Path(__file__).resolve().parents[2]
CAL = load_calendar()
SETTINGS = TicketSettings()  # consult 3, complaint 7 working days; crisis 24 h / 48 h


def at(day: str, clock: str = "10:15") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def due(day: str, request_type: str | None, settings: TicketSettings = SETTINGS) -> Deadline:
    return handling_deadline(at(day), request_type, settings, CAL)


# --- National Day 2026: 10月1日–7日 off, make-up Sunday 9月20日 and Saturday 10月10日 ---

def test_given_consult_received_2026_09_30_then_due_on_the_make_up_saturday_10_10():
    assert due("2026-09-30", "consult") == Deadline(due="2026-10-10", rule="3 working days", provisional=False)
    assert date(2026, 10, 10).weekday() == 5 and chinese_calendar.is_workday(date(2026, 10, 10))


def test_given_complaint_received_2026_09_30_then_due_2026_10_15():
    assert due("2026-09-30", "complaint") == Deadline(due="2026-10-15", rule="7 working days", provisional=False)


def test_given_received_late_in_the_evening_then_counting_still_starts_the_next_day():
    assert handling_deadline(at("2026-09-30", "23:59"), "consult", SETTINGS, CAL).due == "2026-10-10"


def test_given_received_the_friday_before_the_make_up_sunday_then_one_day_is_that_sunday():
    one = SETTINGS.model_copy(update={"deadlines": {"consult": 1}})
    assert date(2026, 9, 20).weekday() == 6
    assert due("2026-09-18", "consult", one) == Deadline(due="2026-09-20", rule="1 working day")


def test_given_received_on_a_national_day_holiday_then_days_count_from_after_the_holiday():
    assert due("2026-10-03", "consult").due == "2026-10-10"  # 8, 9, 10 (Sat, 调休)


# --- Spring Festival 2026: 2月15日–23日 off, make-up Saturdays 2月14日 and 2月28日 ---

def test_given_the_spring_festival_library_facts_then_they_are_those_the_deadlines_rely_on():
    assert [d for d in (date(2026, 2, 14) + timedelta(days=n) for n in range(15)) if not chinese_calendar.is_workday(d)] == [
        date(2026, 2, 15) + timedelta(days=n) for n in range(9)
    ]
    assert chinese_calendar.is_workday(date(2026, 2, 14)) and chinese_calendar.is_workday(date(2026, 2, 28))


def test_given_consult_received_before_the_spring_festival_then_make_up_saturday_counts_and_holiday_does_not():
    # 13 (Fri), 14 (Sat, 调休), then 15–23 off, 24 (Tue)
    assert due("2026-02-12", "咨询") == Deadline(due="2026-02-24", rule="3 working days")


def test_given_complaint_received_before_the_spring_festival_then_due_on_the_make_up_saturday_02_28():
    # 13, 14 (Sat), 24, 25, 26, 27, 28 (Sat, 调休)
    assert due("2026-02-12", "投诉") == Deadline(due="2026-02-28", rule="7 working days")


def test_given_received_during_the_spring_festival_then_days_count_from_the_first_working_day_after():
    assert due("2026-02-16", "consult").due == "2026-02-26"


# --- provisional years ---

def test_given_days_counted_only_in_2026_then_not_provisional_even_at_year_end():
    assert due("2026-12-28", "consult") == Deadline(due="2026-12-31", rule="3 working days", provisional=False)


def test_given_counting_runs_into_2027_then_provisional_and_the_statutory_new_year_is_skipped():
    # 31 Dec (Thu), 1 Jan 2027 (元旦, statutory) skipped, weekend, 4 Jan, 5 Jan
    result = due("2026-12-30", "consult")
    assert result == Deadline(due="2027-01-05", rule="3 working days", provisional=True)
    assert provisional_years(date(2026, 12, 30), date(2027, 1, 5), CAL) == [2027]


def test_given_received_in_2027_then_provisional_spring_festival_days_are_off():
    # 4 Feb 2027 (Thu); 5–8 Feb 春节 (statutory); 9, 10 Feb
    assert due("2027-02-03", "consult") == Deadline(due="2027-02-10", rule="3 working days", provisional=True)


def test_given_a_year_in_neither_source_then_weekends_only_and_provisional():
    assert due("2030-10-01", "consult") == Deadline(due="2030-10-04", rule="3 working days", provisional=True)


def test_given_a_library_that_covers_2027_then_the_same_deadline_is_not_provisional():
    real = library_data()
    extended = LibraryData({**real.holidays, date(2027, 1, 1): "元旦"}, dict(real.workdays))
    cal = load_calendar(library=extended)
    assert handling_deadline(at("2026-12-30"), "consult", SETTINGS, cal).provisional is False


def test_given_zero_working_days_then_due_on_the_receipt_day_and_nothing_counted():
    zero = SETTINGS.model_copy(update={"deadlines": {"consult": 0}})
    assert due("2026-12-31", "consult", zero) == Deadline(due="2026-12-31", rule="0 working days")


# --- request types ---

@pytest.mark.parametrize(("chinese", "english", "days"), [
    ("咨询", "consult", 3), ("求助", "help", 3), ("投诉", "complaint", 7), ("举报", "report", 7), ("建议", "suggestion", 3),
])
def test_given_chinese_or_english_type_name_then_same_deadline(chinese, english, days):
    assert due("2026-11-02", chinese) == due("2026-11-02", english) == due("2026-11-02", english.upper())
    assert due("2026-11-02", chinese).rule == f"{days} working days"


@pytest.mark.parametrize("request_type", [None, "", "  ", "其他", "unknown"])
def test_given_unknown_or_empty_type_then_consults_deadline(request_type):
    assert due("2026-09-30", request_type) == due("2026-09-30", "consult")


def test_given_config_without_a_type_then_that_type_gets_consults_deadline():
    settings = SETTINGS.model_copy(update={"deadlines": {"consult": 5, "complaint": 10}})
    assert due("2026-11-02", "help", settings).rule == "5 working days"
    assert due("2026-11-02", "complaint", settings).rule == "10 working days"


def test_given_config_without_consult_either_then_built_in_default_applies():
    settings = SETTINGS.model_copy(update={"deadlines": {"complaint": 10}})
    assert due("2026-11-02", "help", settings).rule == "3 working days"


# --- crisis mode ---

CRISIS = SETTINGS.model_copy(update={"crisis": True})


def test_given_crisis_mode_then_consult_due_24_hours_after_receipt_with_offset():
    result = handling_deadline(at("2026-09-30", "10:15"), "咨询", CRISIS, CAL)
    assert result == Deadline(due="2026-10-01T10:15:00+08:00", rule="24 h (crisis)", provisional=False)


def test_given_crisis_mode_then_complaint_due_48_hours_later_even_across_holidays():
    result = handling_deadline(at("2026-12-30", "18:40"), "complaint", CRISIS, CAL)
    assert result == Deadline(due="2027-01-01T18:40:00+08:00", rule="48 h (crisis)", provisional=False)


def test_given_crisis_mode_and_unknown_type_then_consults_hours():
    assert handling_deadline(at("2026-09-30"), "其他", CRISIS, CAL).rule == "24 h (crisis)"


def test_given_crisis_mode_and_a_naive_time_then_due_carries_the_local_offset():
    received = datetime(2026, 9, 30, 10, 15)
    result = handling_deadline(received, "consult", CRISIS, CAL)
    parsed = datetime.fromisoformat(result.due)
    assert parsed.tzinfo is not None and parsed == received.astimezone() + timedelta(hours=24)


# --- ivr tickets deadline ---

def run_cli(capsys, *argv: str, config: Path = REPO / "config") -> tuple[int, str, str]:
    code = cli.main(["--config", str(config), "tickets", "deadline", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_given_the_shipped_config_when_complaint_of_2026_09_30_then_cli_prints_2026_10_15(capsys):
    assert run_cli(capsys, "2026-09-30", "--type", "投诉") == (0, "2026-10-15\n", "")


def test_given_english_type_and_default_type_then_cli_prints_consult_date(capsys):
    assert run_cli(capsys, "2026-09-30", "--type", "consult") == (0, "2026-10-10\n", "")
    assert run_cli(capsys, "2026-09-30") == (0, "2026-10-10\n", "")


def test_given_a_deadline_in_2027_then_cli_prints_it_and_notes_provisional_on_stderr(capsys):
    code, out, err = run_cli(capsys, "2026-12-30", "--type", "咨询")
    assert (code, out) == (0, "2027-01-05\n")
    assert err.startswith("note: 2027-01-05 is provisional: holiday calendar for 2027 is provisional") and err.count("\n") == 1


def test_given_crisis_flag_then_cli_prints_due_time(capsys):
    assert run_cli(capsys, "2026-09-30T10:15+08:00", "--type", "投诉", "--crisis") == (0, "2026-10-02T10:15:00+08:00\n", "")


def test_given_crisis_in_config_then_cli_counts_hours_unless_no_crisis(tmp_path, capsys):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "tickets.yaml").write_text("tickets:\n  crisis: true\n  crisis_hours: {consult: 12}\n  deadlines: {consult: 1}\n",
                                         encoding="utf-8")
    assert run_cli(capsys, "2026-09-30T10:15+08:00", config=config) == (0, "2026-09-30T22:15:00+08:00\n", "")
    assert run_cli(capsys, "2026-09-30", "--no-crisis", config=config) == (0, "2026-10-08\n", "")


@pytest.mark.parametrize(("argv", "reason"), [
    (["2026-13-01", "--type", "consult"], "bad date '2026-13-01'"),
    (["yesterday"], "bad date 'yesterday'"),
    (["2026-09-30", "--type", "其他"], "unknown request type '其他' (one of 咨询/consult"),
])
def test_given_bad_date_or_type_then_cli_exits_2_with_one_clear_line(capsys, argv, reason):
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"ivr tickets: {reason}") and err.count("\n") == 1


def test_given_a_missing_config_directory_then_cli_exits_2(tmp_path, capsys):
    code, out, err = run_cli(capsys, "2026-09-30", config=tmp_path / "nowhere")
    assert (code, out) == (2, "") and "does not exist" in err
