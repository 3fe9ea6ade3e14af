"""The call follower's own rules (its AMI and Redis sides are tested on the real bed): deadlines
follow the live config, so an admin's crisis switch applies to the next ticket without a restart;
every closed ticket is named in the log."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.core.calendar import load_calendar
from ivr.follow import CallFollower
from tickets.store import TicketStore
from tickets.model import Ticket
from testbed.calls import until

CALLER_KEY = b"test-caller-key-not-a-secret"  # keys the caller index (IVR_CALLER_KEY)

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "tests" / "tracking" / "recorded"


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


async def test_given_calls_closing_in_one_batch_of_events_then_one_info_line_names_each_ticket(
        tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_config(REPO / "config", environ={}).settings
    calendar = load_calendar()
    store = TicketStore(redis_url, tmp_path, name="t", retention_days=1, caller_key=CALLER_KEY)
    follower = CallFollower(settings, store, lambda: calendar)
    calls = {"answered_rated": "answered", "abandoned_in_queue": "abandoned_queue"}
    caplog.set_level(logging.INFO, logger="ivr.follow")
    linkedids = []
    for name in calls:  # one after the other, as one read of AMI events brings them
        events = json.loads((RECORDED / f"{name}.json").read_text())
        linkedids.append(events[0]["Linkedid"])
        follower.on_ivr_record({"unique_id": linkedids[-1], "route": {"type": "queue"}})
        for event in events:
            follower.on_event(event)
    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "ivr.follow"]

    assert lines() == []  # logged once the events at hand are handled
    await asyncio.sleep(0)
    assert lines() == [f"2 ticket(s) closed: call {linkedids[0]} answered (ami), call {linkedids[1]} abandoned_queue (ami)"]
    await store.close()


async def test_given_nothing_to_follow_then_the_loop_sleeps_until_a_call_and_sweeps_again_while_one_is_followed(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ivr.follow.SWEEP_INTERVAL", 0.01)
    settings = load_config(REPO / "config", environ={}).settings
    calendar = load_calendar()
    store = TicketStore(redis_url, tmp_path, name="t", retention_days=1, caller_key=CALLER_KEY)
    rounds = [0]

    def live() -> object:  # read once per round of the loop
        rounds[0] += 1
        return settings

    follower = CallFollower(settings, store, lambda: calendar, live_settings=live)  # type: ignore[arg-type]
    loop = asyncio.create_task(follower.run())
    try:
        await asyncio.sleep(0.2)  # 20 sweep intervals: a stand-by follows nothing, so it does not wake
        assert rounds[0] == 0
        first = json.loads((RECORDED / "answered_rated.json").read_text())[0]  # the call's first channel
        follower.on_event(first)
        assert follower.tracker.calls
        await until(lambda: rounds[0] >= 5, timeout=5, interval=0.01)  # a call: swept every interval
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await store.close()
