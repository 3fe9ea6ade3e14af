"""Chinese working days: official holidays and the weekend days worked instead (调休).

The calendar is data (``holidays_cn.yaml`` beside this module, one State Council notice per
year), not code: branch conditions use it for "is today a working day", and ticket deadlines
("3 working days") will too. Years outside the data fall back to Monday–Friday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from ivr.yamlsource import SourceError, load, pydantic_errors

DEFAULT_PATH = Path(__file__).with_name("holidays_cn.yaml")
DayKind = Literal["working", "rest", "holiday"]


class _Year(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    status: Literal["official", "provisional"]
    holidays: dict[str, tuple[date, date]]
    workdays: tuple[date, ...] = ()


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    years: dict[int, _Year]


@dataclass(frozen=True)
class HolidayCalendar:
    holidays: Mapping[date, str]  # every day off of an official holiday period → its name
    workdays: frozenset[date]  # weekend days that are working days (调休)
    official_years: frozenset[int]
    provisional_years: frozenset[int]

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() < 5

    def matches(self, day: date, kind: DayKind) -> bool:
        """``working``: a working day; ``rest``: weekend or holiday; ``holiday``: an official holiday."""
        if kind == "holiday":
            return self.is_holiday(day)
        return self.is_working_day(day) == (kind == "working")

    def add_working_days(self, day: date, count: int) -> date:
        """The date ``count`` working days after ``day`` (a ticket deadline)."""
        while count > 0:
            day += timedelta(days=1)
            count -= self.is_working_day(day)
        return day

    def coverage_warning(self, year: int) -> str | None:
        if year in self.official_years:
            return None
        if year in self.provisional_years:
            return f"holiday calendar for {year} is provisional (statutory days only, no 调休); update {DEFAULT_PATH.name}"
        return f"holiday calendar has no data for {year}; weekends only"


def load_calendar(path: str | Path = DEFAULT_PATH) -> HolidayCalendar:
    """Read the holiday file; a mistake in it is reported as ``file:line:col: reason``."""
    doc = load(path)
    try:
        data = _File.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None
    holidays: dict[date, str] = {}
    for year, entry in data.years.items():
        for name, (first, last) in entry.holidays.items():
            if first > last or first.year != year:
                raise SourceError(doc.where(("years", str(year), "holidays", name)), f"{name}: bad range {first}..{last}")
            day = first
            while day <= last:
                holidays[day] = name
                day += timedelta(days=1)
    return HolidayCalendar(
        holidays=holidays,
        workdays=frozenset(d for y in data.years.values() for d in y.workdays),
        official_years=frozenset(y for y, e in data.years.items() if e.status == "official"),
        provisional_years=frozenset(y for y, e in data.years.items() if e.status == "provisional"),
    )
