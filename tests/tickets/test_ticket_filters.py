"""Ticket filters from typed text (CLI options, console form fields) and the call's stages."""

from __future__ import annotations

from datetime import datetime

import pytest

from tickets.filters import parse_filters
from tickets.model import Disposition, IvrPath, RequestType, Ticket, TimelineEntry
from tickets.timeline import call_steps


def test_typed_filters_become_one_filter_or_a_named_error() -> None:
    f = parse_filters("2026-12-01", "2026-12-01", "12345", "投诉", "abandoned_queue", None, option="")
    assert f.since == datetime(2026, 12, 1).astimezone() and f.until == datetime(2026, 12, 2).astimezone()
    assert (f.line, f.request_type, f.disposition) == ("12345", RequestType.COMPLAINT, Disposition.ABANDONED_QUEUE)
    received = datetime(2026, 12, 1, 9).astimezone().isoformat()
    assert f.matches(Ticket("a", "12345", "139", received, request_type="complaint", disposition="abandoned_queue"))
    assert not f.matches(Ticket("b", "12366", "139", received, request_type="complaint", disposition="abandoned_queue"))
    with pytest.raises(ValueError, match="bad --line"):
        parse_filters(None, None, "12a", None, None, None)
    with pytest.raises(ValueError, match="until 2026-11-30 is not after since"):
        parse_filters("2026-12-01", "2026-11-30", None, None, None, None, option="")


def test_the_ivr_path_comes_right_after_receipt_among_the_stages() -> None:
    t = Ticket("a", "12345", "139", "2026-12-01T09:00:00+08:00",
               ivr=IvrPath(flow="main", nodes=["main/greeting", "main/menu"], keys=["1"], route="queue"))
    t.timeline = [TimelineEntry("2026-12-01T09:00:00+08:00", "received", "12345"),
                  TimelineEntry("2026-12-01T09:00:05+08:00", "queue joined", "general position 1"),
                  TimelineEntry("2026-12-01T09:00:09+08:00", "agent connected", "agent1001 after 4.0 s"),
                  TimelineEntry("2026-12-01T09:00:30+08:00", "transfer dialed", "12366 via tax")]
    steps = call_steps(t)
    assert [(s.stage, s.event) for s in steps] == [("受理", "来电受理"), ("IVR", "语音导航"), ("排队", "进入队列"),
                                                  ("座席", "座席接通"), ("转接", "转接拨出")]
    assert steps[1].detail == "流程 main：main/greeting → main/menu；按键 1；去向 转人工排队"
