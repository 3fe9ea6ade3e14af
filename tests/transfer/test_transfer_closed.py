"""A sub-center outside its hours is refused by the engine's transfer (``ivr transfer``, the
desk) with a plain reason, before anything is dialed; inside them, and for 7×24 or emergency
targets, nothing is refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.core.calendar import load_calendar
from queues.model import Hours
from transfer.control import TransferError, refuse_closed, resolve

REPO = Path(__file__).resolve().parents[2]
CALENDAR = load_calendar()
PLAIN = load_config(REPO / "config", environ={}).settings
OFFICE = Hours(day="working", time="08:30-17:30")
SETTINGS = PLAIN.model_copy(update={"subcenters": {
    **PLAIN.subcenters, "customs": PLAIN.subcenters["customs"].model_copy(update={"hours": OFFICE})}})
TUESDAY_10, TUESDAY_18, NATIONAL_DAY = datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 18), datetime(2026, 10, 1, 10)


def test_a_sub_center_outside_its_hours_or_on_a_holiday_is_refused_with_its_hours() -> None:
    customs = resolve(SETTINGS, "12360")
    for at in (TUESDAY_18, NATIONAL_DAY):
        with pytest.raises(TransferError, match=r"sub-center customs \(12360\) is closed now \(hours: working 08:30-17:30\)"):
            refuse_closed(customs, SETTINGS, at, CALENDAR)


def test_within_its_hours_without_hours_or_an_emergency_line_is_not_refused() -> None:
    refuse_closed(resolve(SETTINGS, "customs"), SETTINGS, TUESDAY_10, CALENDAR)
    refuse_closed(resolve(PLAIN, "12360"), PLAIN, NATIONAL_DAY, CALENDAR)  # no hours: 7×24
    refuse_closed(resolve(SETTINGS, "110"), SETTINGS, TUESDAY_18, CALENDAR)
