"""Handling deadlines (办理时限): by when the department must answer the citizen.

Normal mode counts Chinese working days (holidays off, 调休 weekends worked) from the day
after receipt: "3 working days" from 2026-09-30 is 2026-10-10, a make-up Saturday. Crisis mode
(an admin switches ``tickets.crisis`` on) counts clock hours from the moment of receipt.
The receipt date is the date on the ``received`` clock as given (the hotline's local time; a
naive time is taken as this machine's local time).

A working-day deadline is *provisional* when a day it counts lies in a year whose calendar is
not official (see :mod:`ivr.core.calendar`): it may move once that year's notice is in.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Mapping

from ivr.core.calendar import HolidayCalendar
from tickets.model import Deadline, RequestType
from tickets.settings import RequestTypeName, TicketSettings

_BUILT_IN = TicketSettings()


def handling_deadline(
    received: datetime, request_type: str | None, settings: TicketSettings, calendar: HolidayCalendar
) -> Deadline:
    """The deadline of a ticket received at ``received``; an unknown or empty type gets consult's."""
    kind = _kind(request_type)
    if received.tzinfo is None:
        received = received.astimezone()
    if settings.crisis:
        hours = _per_type(settings.crisis_hours, kind, _BUILT_IN.crisis_hours)
        due_at = received + timedelta(hours=hours)
        return Deadline(due=due_at.isoformat(timespec="seconds"), rule=f"{hours} h (crisis)")
    days = _per_type(settings.deadlines, kind, _BUILT_IN.deadlines)
    day = received.date()
    due = calendar.add_working_days(day, days)
    rule = f"{days} working day{'s' * (days != 1)}"
    return Deadline(due=due.isoformat(), rule=rule, provisional=bool(provisional_years(day, due, calendar)))


def provisional_years(received: date, due: date, calendar: HolidayCalendar) -> list[int]:
    """Years of the days counted (the day after ``received`` through ``due``) that are not official."""
    first = received + timedelta(days=1)
    if due < first:
        return []  # zero days counted
    return [y for y in range(first.year, due.year + 1) if not calendar.is_official(y)]


def _kind(request_type: str | None) -> RequestType:
    try:
        return RequestType.parse(request_type or "")
    except ValueError:
        return RequestType.CONSULT


def _per_type(table: Mapping[RequestTypeName, int], kind: RequestType, defaults: Mapping[RequestTypeName, int]) -> int:
    """The type's own entry; a type the admin left out of the table gets consult's, then the built-in one."""
    given = {str(name): value for name, value in table.items()}
    for key in (kind.value, RequestType.CONSULT.value):
        if key in given:
            return given[key]
    return {str(name): value for name, value in defaults.items()}[kind.value]
