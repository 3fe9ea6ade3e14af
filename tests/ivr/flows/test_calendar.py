from datetime import date, datetime, timedelta, timezone

import chinese_calendar
import pytest

from flow_helpers import make_catalog
from ivr import cli
from ivr import hot_reload as live
from ivr.core.calendar import LibraryData, library_data, load_calendar
from ivr.prompts import catalog as prompts_module
from ivr.core.yamlsource import SourceError

CAL = load_calendar()
LIBRARY = library_data()
NO_LIBRARY = LibraryData(holidays={}, workdays={})


def test_official_holidays_and_adjusted_working_days():
    assert CAL.is_holiday(date(2025, 1, 29)) and not CAL.is_working_day(date(2025, 2, 3))  # 春节
    assert CAL.is_working_day(date(2025, 1, 26))  # Sunday worked (调休)
    assert CAL.is_working_day(date(2026, 2, 14)) and CAL.is_working_day(date(2026, 2, 28))
    assert not CAL.is_working_day(date(2026, 10, 7)) and CAL.is_working_day(date(2026, 10, 10))
    assert CAL.holidays[date(2026, 9, 26)] == "中秋"  # the library's Chinese name
    assert CAL.is_working_day(date(2026, 11, 23)) and not CAL.is_working_day(date(2026, 11, 22))


def test_rest_includes_weekends_and_holiday_only_official_days():
    assert CAL.matches(date(2026, 11, 22), "rest") and not CAL.matches(date(2026, 11, 22), "holiday")
    assert CAL.matches(date(2026, 10, 1), "holiday") and CAL.matches(date(2026, 10, 1), "rest")


def test_working_day_deadlines_skip_holidays():
    # a complaint filed on 30 Sep 2026 is due 7 working days later: 8, 9, 10 (Sat, 调休), 12, 13, 14, 15 Oct
    assert CAL.add_working_days(date(2026, 9, 30), 7) == date(2026, 10, 15)


def test_years_without_the_notice_are_flagged():
    assert CAL.coverage_warning(2026) is None
    assert "provisional" in (CAL.coverage_warning(2027) or "")
    assert "no data" in (CAL.coverage_warning(2030) or "")


def test_given_every_year_the_library_covers_when_asked_then_calendar_agrees_with_it_day_by_day():
    first, last = min(LIBRARY.years), max(LIBRARY.years)
    assert first <= 2025 and last >= 2026
    day = date(first, 1, 1)
    while day.year <= last:
        assert CAL.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_given_the_library_raises_for_a_year_then_that_year_is_not_official_from_it():
    beyond = max(LIBRARY.years) + 1
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(beyond, 1, 4))
    chinese_calendar.is_workday(date(beyond - 1, 12, 31))  # the last covered year does not raise
    assert LIBRARY.years == CAL.library_years and beyond not in CAL.library_years
    assert not load_calendar(library=LIBRARY).is_official(beyond + 10)  # in neither source


def test_given_2026_spring_festival_then_library_days_off_and_make_up_saturdays_hold():
    off = [date(2026, 2, 15) + timedelta(days=n) for n in range(9)]  # 2月15日–23日
    assert all(CAL.is_holiday(d) and not CAL.is_working_day(d) for d in off)
    assert not CAL.is_holiday(date(2026, 2, 14)) and not CAL.is_holiday(date(2026, 2, 24))
    for saturday in (date(2026, 2, 14), date(2026, 2, 28)):
        assert saturday.weekday() == 5 and CAL.is_working_day(saturday) and chinese_calendar.is_workday(saturday)


def test_given_2026_national_day_then_make_up_sunday_and_saturday_are_working_days():
    assert date(2026, 9, 20).weekday() == 6 and CAL.is_working_day(date(2026, 9, 20))
    assert date(2026, 10, 10).weekday() == 5 and CAL.is_working_day(date(2026, 10, 10))
    assert all(not CAL.is_working_day(date(2026, 10, d)) for d in range(1, 8))


def test_given_yaml_disagrees_with_library_for_a_covered_year_when_loaded_then_library_wins(tmp_path):
    path = tmp_path / "holidays.yaml"
    path.write_text(
        "years:\n"
        "  2026:\n"
        "    status: provisional\n"
        "    holidays: {假期: [2026-10-08, 2026-10-09]}\n"  # working days in the real notice
        "    workdays: [2026-10-11]\n"  # a Sunday the notice leaves off
        "  2027:\n"
        "    status: official\n"
        "    holidays: {元旦: [2027-01-01, 2027-01-01]}\n",
        encoding="utf-8",
    )
    cal = load_calendar(path)
    assert cal.is_working_day(date(2026, 10, 8)) and not cal.is_working_day(date(2026, 10, 11))
    assert cal.is_working_day(date(2026, 10, 10))  # from the library, absent in this file
    assert cal.is_official(2026) and 2026 not in cal.provisional_years
    assert cal.is_official(2027) and cal.coverage_warning(2027) is None  # an uncovered year the file marks official
    assert cal.is_holiday(date(2027, 1, 1))


def test_given_a_covered_year_with_a_bad_range_in_yaml_when_loaded_then_it_is_still_refused(tmp_path):
    path = tmp_path / "holidays.yaml"
    path.write_text("years:\n  2026:\n    status: official\n    holidays: {春节: [2026-02-23, 2026-02-15]}\n", encoding="utf-8")
    with pytest.raises(SourceError, match="春节: bad range"):
        load_calendar(path)


def test_given_no_library_year_when_loaded_then_the_yaml_alone_decides():
    cal = load_calendar(library=NO_LIBRARY)
    assert cal.library_years == frozenset()
    assert cal.is_official(2026) and 2027 in cal.provisional_years and not cal.is_official(2024)
    assert cal.holidays[date(2026, 9, 26)] == "中秋节"  # the file's own name
    assert cal.is_working_day(date(2024, 10, 1))  # 2024 is in neither source: weekdays only
    assert "covers no year" in (cal.coverage_warning(2024) or "")


def test_given_provisional_2027_then_statutory_days_are_off_and_no_make_up_days():
    assert CAL.provisional_years >= {2027} and not CAL.is_official(2027)
    assert not CAL.is_working_day(date(2027, 2, 8)) and CAL.is_holiday(date(2027, 2, 5))  # 春节, 2025 rules
    assert not CAL.is_working_day(date(2027, 2, 6))  # Saturday: no 调休 known yet
    assert CAL.is_working_day(date(2027, 2, 9))


def test_given_this_or_next_year_not_official_when_ivr_check_then_it_warns_about_ticket_deadlines(
    config_dir, tmp_path, monkeypatch, capsys
):
    year = datetime.now(timezone.utc).year
    holidays = tmp_path / "holidays.yaml"
    holidays.write_text(f"years:\n  {year}:\n    status: provisional\n    holidays: {{}}\n", encoding="utf-8")
    monkeypatch.setattr(prompts_module, "load_catalog", lambda _dir: make_catalog(), raising=False)
    monkeypatch.setattr(live, "load_calendar", lambda _path: load_calendar(holidays, library=NO_LIBRARY))
    assert cli.main(["--config", str(config_dir), "check"]) == 0
    out = capsys.readouterr().out
    assert (f"warning: holiday calendar for {year} is provisional (statutory days only, no 调休): "
            f"ticket deadlines that run into {year} are provisional") in out
    assert (f"warning: holiday calendar has no data for {year + 1} (weekends only): "
            f"ticket deadlines that run into {year + 1} are provisional") in out


def test_given_this_and_next_year_official_when_ivr_check_then_no_calendar_warning(config_dir, monkeypatch, capsys):
    year = datetime.now(timezone.utc).year
    covered = {date(y, 1, 1): "元旦" for y in (year, year + 1)}
    monkeypatch.setattr(prompts_module, "load_catalog", lambda _dir: make_catalog(), raising=False)
    monkeypatch.setattr(live, "load_calendar", lambda path: load_calendar(path, library=LibraryData(covered, {})))
    assert cli.main(["--config", str(config_dir), "check"]) == 0
    assert "holiday calendar" not in capsys.readouterr().out
