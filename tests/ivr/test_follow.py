"""The call follower's own rules (its AMI and Redis sides are tested on the real bed): deadlines
follow the live config, so an admin's crisis switch applies to the next ticket without a restart."""

from __future__ import annotations

from pathlib import Path

from ivr.config import load_config
from ivr.flows.calendar import load_calendar
from ivr.follow import CallFollower
from ivr.store import TicketStore
from tickets.model import Ticket

CALLER_KEY = b"test-caller-key-not-a-secret"  # keys the caller index (IVR_CALLER_KEY)

REPO = Path(__file__).resolve().parents[2]


async def test_given_an_admin_switches_crisis_mode_on_then_the_next_deadline_is_in_hours(tmp_path: Path) -> None:
    normal = load_config(REPO / "config", environ={}).settings
    crisis = normal.model_copy(update={"tickets": normal.tickets.model_copy(update={"crisis": True})})
    live = [normal]
    calendar = load_calendar()
    store = TicketStore("redis://127.0.0.1:1/0", tmp_path, name="t", retention_days=1, caller_key=CALLER_KEY)
    follower = CallFollower(normal, store, lambda: calendar, live_settings=lambda: live[-1])
    ticket = Ticket(linkedid="a.1", line="12345", caller="13900000001", received="2026-09-30T10:00:00+08:00",
                    request_type="complaint")

    assert follower._deadline(ticket).due == "2026-10-15"
    first = follower._deadline(ticket)
    first.due = "changed"  # each ticket gets its own copy of a cached deadline
    assert follower._deadline(ticket).due == "2026-10-15"
    live.append(crisis)  # ivr reload
    assert follower._deadline(ticket).rule == "48 h (crisis)"
    await store.close()
