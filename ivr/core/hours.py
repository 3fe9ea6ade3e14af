"""Staffed hours (expert queues, sub-centers) and whether they hold at a moment.

Shared by :mod:`queues` and :mod:`transfer`, so it lives below both: transfer need not import
queues to know whether a sub-center is open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from ivr.core.calendar import HolidayCalendar
from ivr.core.strict import Strict
from ivr.core.timerange import in_time_range, parse_time_range


class Hours(Strict):
    """When a queue is staffed (expert seats); outside them its calls go to the overflow queue."""

    day: Literal["working", "rest", "holiday", "any"] = Field(
        "working", description="working days (调休 make-up days included), rest days, holidays, or any day"
    )
    time: str = Field("00:00-24:00", description="HH:MM-HH:MM local time")

    @field_validator("time")
    @classmethod
    def _range(cls, value: str) -> str:
        parse_time_range(value)  # one parser for time ranges
        return value


def staffed(hours: Hours | None, now: datetime, calendar: HolidayCalendar) -> bool:
    if hours is None:
        return True
    if hours.day != "any" and not calendar.matches(now.date(), hours.day):
        return False
    return in_time_range(now.time(), *parse_time_range(hours.time))
