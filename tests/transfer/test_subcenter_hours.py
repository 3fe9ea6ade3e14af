"""Sub-center hours: outside them the route is marked closed (not dialed; the dialplan tells
the caller and offers the queue or a callback), validated with file:line."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from ivr.core.calendar import load_calendar
from testbed.configs import edit_entry
from queues.model import Hours
from transfer.hours import open_subcenter
from transfer.model import SubCenter, TransferRoute

REPO = Path(__file__).resolve().parents[2]
CALENDAR = load_calendar()
TOBACCO = {"tobacco": SubCenter(title="12313", number="12313", host="127.0.0.1",
                                hours=Hours(day="working", time="08:30-17:30"))}
ROUTE = TransferRoute("tobacco", "12313", 20, "general")


def test_within_its_hours_the_sub_center_is_dialed() -> None:
    assert open_subcenter(ROUTE, TOBACCO, datetime(2026, 12, 1, 10, 0), CALENDAR) == ROUTE
    assert ROUTE.variables()["IVR_TRANSFER_CLOSED"] == ""


def test_outside_its_hours_or_on_a_holiday_the_route_is_closed() -> None:
    for at in (datetime(2026, 12, 1, 18, 0), datetime(2026, 10, 1, 10, 0), datetime(2026, 12, 5, 10, 0)):
        closed = open_subcenter(ROUTE, TOBACCO, at, CALENDAR)
        assert closed.closed and closed.variables()["IVR_TRANSFER_CLOSED"] == "1", at
        assert (closed.trunk, closed.number, closed.fallback_queue) == ("tobacco", "12313", "general")


def test_without_hours_a_sub_center_or_another_trunk_is_7x24() -> None:
    always = {"tax": SubCenter(title="12366", number="12366", host="127.0.0.1")}
    night = datetime(2026, 10, 1, 3, 0)
    assert not open_subcenter(TransferRoute("tax", "12366"), always, night, CALENDAR).closed
    assert not open_subcenter(TransferRoute("emergency", "110"), always, night, CALENDAR).closed


def test_bad_hours_are_refused_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    line = edit_entry(config / "subcenters.yaml", "tobacco", "port: 5073}", 'port: 5073, hours: {day: working, time: "8:30-25:00"}}')
    with pytest.raises(ConfigError, match=rf"subcenters.yaml:{line}:\d+: .*hours"):
        load_config(config, environ={})


def test_at_a_pinned_time_only_the_sub_centers_with_hours_are_published_and_closed_ones_say_so() -> None:
    from transfer.hours import closed_now

    subcenters = {**TOBACCO, "tax": SubCenter(title="12366", number="12366", host="127.0.0.1"),
                  "customs": SubCenter(title="12360", number="12360", host="127.0.0.1",
                                       hours=Hours(day="any", time="08:00-20:00"))}
    assert closed_now(subcenters, datetime(2026, 12, 1, 10, 0), CALENDAR) == {"tobacco": False, "customs": False}
    assert closed_now(subcenters, datetime(2026, 12, 5, 10, 0), CALENDAR) == {"tobacco": True, "customs": False}
    assert closed_now(subcenters, datetime(2026, 12, 1, 17, 30), CALENDAR) == {"tobacco": True, "customs": False}
    assert closed_now(subcenters, datetime(2026, 12, 1, 21, 0), CALENDAR) == {"tobacco": True, "customs": True}


def test_the_published_variable_is_a_valid_asterisk_name_per_sub_center() -> None:
    from transfer.ami import closed_variable

    assert closed_variable("customs") == "IVR_SUBCENTER_CLOSED_CUSTOMS"
    assert closed_variable("city-tax") == "IVR_SUBCENTER_CLOSED_CITY_TAX"
