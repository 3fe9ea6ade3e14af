"""Chinese working days: official holidays and the weekend days worked instead (调休).

Branch conditions use this for "is today a working day", and ticket deadlines ("3 working
days", :mod:`tickets.deadline`) count with it. Two sources, one calendar:

- the maintained ``chinesecalendar`` library (import ``chinese_calendar``) for every year it
  covers (it raises NotImplementedError for the others). Its data follows the State Council
  General Office's yearly notice; upgrading the package is how a new year becomes official.
- ``holidays_cn.yaml`` beside this module only for the years the library does not cover yet:
  a year is ``official`` there once someone copies the published notice in, ``provisional``
  (statutory days only, no 调休) before that.

For a year the library covers, the library wins: entries for that year in the yaml are read
(and must be valid) but ignored, so a stale or mistyped copy cannot move a deadline. Years in
neither source fall back to Monday–Friday. A year is official when the library covers it or
the yaml marks it official; anything else makes :meth:`HolidayCalendar.coverage_warning`
speak (``ivr check`` prints it) and ticket deadlines counted through it provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, Mapping

import chinese_calendar  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, ValidationError

from ivr.core.yamlsource import SourceError, load, pydantic_errors

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
class LibraryData:
    """What ``chinese_calendar`` publishes: each day off of a holiday period (weekends inside it
    included) and each make-up workday, with the holiday's Chinese name."""

    holidays: Mapping[date, str]
    workdays: Mapping[date, str]
    version: str = ""

    @property
    def years(self) -> frozenset[int]:
        """The years it covers: the same first..last rule the library applies before raising."""
        if not self.holidays:
            return frozenset()
        return frozenset(range(min(self.holidays).year, max(self.holidays).year + 1))


def library_data() -> LibraryData:
    """The installed ``chinesecalendar`` release as plain data (its public ``holidays``/``workdays``)."""

    def chinese(name: str) -> str:
        return str(chinese_calendar.Holiday(name).chinese)

    return LibraryData(
        holidays={d: chinese(n) for d, n in chinese_calendar.holidays.items()},
        workdays={d: chinese(n) for d, n in chinese_calendar.workdays.items()},
        version=str(chinese_calendar.__version__),
    )


@dataclass(frozen=True)
class HolidayCalendar:
    holidays: Mapping[date, str]  # every day off of an official holiday period → its name
    workdays: frozenset[date]  # weekend days that are working days (调休)
    official_years: frozenset[int]  # covered by the library, or marked official in the yaml
    provisional_years: frozenset[int]  # in the yaml as provisional, not covered by the library
    library_years: frozenset[int] = frozenset()
    library_version: str = ""

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
        """The ``count``-th working day after ``day`` (a ticket deadline: counting starts the next day)."""
        while count > 0:
            day += timedelta(days=1)
            count -= self.is_working_day(day)
        return day

    def is_official(self, year: int) -> bool:
        """Working days of ``year`` are final (not provisional, not guessed from weekends)."""
        return year in self.official_years

    def coverage_warning(self, year: int) -> str | None:
        """Why working days of ``year`` may be wrong, or None when they are official."""
        if self.is_official(year):
            return None
        effect = f"ticket deadlines that run into {year} are provisional and working-day branches may be off"
        fix = f"upgrade chinesecalendar ({self._library_span()}) or update {DEFAULT_PATH.name}"
        if year in self.provisional_years:
            return f"holiday calendar for {year} is provisional (statutory days only, no 调休): {effect}; {fix}"
        return f"holiday calendar has no data for {year} (weekends only): {effect}; {fix}"

    def _library_span(self) -> str:
        if not self.library_years:
            return "it covers no year"
        release = f"{self.library_version} " if self.library_version else ""
        return f"{release}covers {min(self.library_years)}–{max(self.library_years)}"


def load_calendar(path: str | Path = DEFAULT_PATH, *, library: LibraryData | None = None) -> HolidayCalendar:
    """The library's years plus the holiday file's other years; a mistake in the file is
    reported as ``file:line:col: reason``. ``library`` defaults to the installed release."""
    library = library_data() if library is None else library
    doc = load(path)
    try:
        data = _File.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_errors(doc, exc) from None
    covered = library.years
    holidays: dict[date, str] = {d: n for d, n in library.holidays.items() if d.year in covered}
    workdays = {d for d in library.workdays if d.year in covered}
    for year, entry in data.years.items():
        for name, (first, last) in entry.holidays.items():
            if first > last or first.year != year:
                raise SourceError(doc.where(("years", str(year), "holidays", name)), f"{name}: bad range {first}..{last}")
        if year in covered:
            continue  # the library wins
        for name, (first, last) in entry.holidays.items():
            holidays.update((first + timedelta(days=n), name) for n in range((last - first).days + 1))
        workdays.update(entry.workdays)
    own = {y: e.status for y, e in data.years.items() if y not in covered}
    return HolidayCalendar(
        holidays=holidays,
        workdays=frozenset(workdays),
        official_years=covered | {y for y, s in own.items() if s == "official"},
        provisional_years=frozenset(y for y, s in own.items() if s == "provisional"),
        library_years=covered,
        library_version=library.version,
    )
