"""Feeding recorded AMI events to the tracker and reading the one ticket a call ends in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from tickets.model import Ticket
from tracking.tracker import CallTracker, Change

RECORDED = Path(__file__).with_name("recorded")


def recorded(name: str) -> list[dict[str, str]]:
    return json.loads((RECORDED / f"{name}.json").read_text())


def ivr_record(linkedid: str, *, keys: list[str], route: str, hung_up: bool = False,
               request_type: str = "") -> dict[str, Any]:
    """The engine's call record, as :func:`ivr.engine.record_to_json` writes it."""
    return {"unique_id": linkedid, "dialed": "12345", "flow": "main", "keys": keys, "hung_up": hung_up,
            "visits": [{"flow": "main", "node": "greeting"}, {"flow": "main", "node": "menu"}],
            "variables": {"request_type": request_type} if request_type else {},
            "route": {"type": route}, "dialplan_fallback": False, "error": None}


def feed(tracker: CallTracker, events: list[dict[str, str]], record: dict[str, Any] | None = None) -> list[Change]:
    """Events in order; the engine's record right after the call's first event (as it comes
    while the call is still in the IVR)."""
    out: list[Change] = []
    for i, event in enumerate(events):
        out += tracker.handle(event)
        if i == 0 and record is not None:
            out += tracker.ivr_record(record, float(event["Timestamp"]))
    return out


def closed(changes: list[Change]) -> Ticket:
    """The closed ticket of one call: opened, its queue visits as they ended, closed."""
    phases = [c.phase for c in changes]
    assert phases[0] == "opened" and phases[-1] == "closed", phases
    assert phases[1:-1] == [f"queue:{v.queue}:1" for v in changes[-1].ticket.queue_visits], phases
    return changes[-1].ticket
