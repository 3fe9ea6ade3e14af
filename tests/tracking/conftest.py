"""The call tracker under test: the project's own config and calendar, deadlines as the engine
computes them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.core.calendar import load_calendar
from tickets.deadline import handling_deadline
from tracking.tracker import CallTracker, Directory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings():
    return load_config(REPO / "config").settings


@pytest.fixture
def tracker(settings) -> CallTracker:
    calendar = load_calendar()
    return CallTracker(Directory.from_settings(settings),
                       lambda t: handling_deadline(datetime.fromisoformat(t.received), t.request_type,
                                                   settings.tickets, calendar))
