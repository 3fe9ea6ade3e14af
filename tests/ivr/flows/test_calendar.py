from datetime import date

from ivr.flows.calendar import load_calendar

CAL = load_calendar()


def test_official_holidays_and_adjusted_working_days():
    assert CAL.is_holiday(date(2025, 1, 29)) and not CAL.is_working_day(date(2025, 2, 3))  # 春节
    assert CAL.is_working_day(date(2025, 1, 26))  # Sunday worked (调休)
    assert CAL.is_working_day(date(2026, 2, 14)) and CAL.is_working_day(date(2026, 2, 28))
    assert not CAL.is_working_day(date(2026, 10, 7)) and CAL.is_working_day(date(2026, 10, 10))
    assert CAL.holidays[date(2026, 9, 26)] == "中秋节"
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
