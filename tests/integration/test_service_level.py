"""Service level from real calls: a scripted mix of answered and abandoned sipp calls through the
general queue, and `ivr stats --json` counting them exactly as by hand — per queue and per line,
each call once, counted while the call is still up."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import asterisk_queue
from tickets.store import TicketStore
from testbed.bed import BedState, TestBed
from testbed.calls import Phones, closed_ticket, for_caller, run_ivr, until
from testbed.sipp import keys
from queues.model import serving
from queues import kpi

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

TO_GENERAL = keys("0", first_ms=500)  # 12345's menu: 0 is the 7×24 general queue
COUNTERS = ("offered", "answered", "answered_15", "answered_30", "abandoned", "abandoned_5", "overflowed",
            "callbacks", "lost", "wait_ms", "answer_wait_ms")


async def stats(state: BedState, since: str) -> dict[str, Any]:
    """`ivr stats --json --since` as an operator runs it: the one report of that range."""
    code, out = await run_ivr(state, "stats", "--json", "--since", since)
    assert code == 0, out
    [report] = json.loads(out)["reports"]
    return dict(report)


def counted(report: dict[str, Any], scope: str, name: str) -> dict[str, int]:
    row = report[scope].get(name, {})
    return {c: int(row.get(c, 0)) for c in (*COUNTERS, "max_wait_ms")}


async def all_closed(tickets: TicketStore, since: float) -> None:
    """Every call of the earlier tests has its ticket closed: their queue visits are counted
    (a visit's write goes before its ticket's ``closed``, in one writer's order)."""

    async def closed() -> bool:
        return all(t.disposition for t in await tickets.received_between(since))

    await until(closed, 60, 0.2)


async def set_paused(ami: AmiClient, bed: TestBed, paused: bool) -> None:
    for member in serving("general", bed.settings.agents, bed.settings.queues):
        await ami.action({"Action": "QueuePause", "Queue": asterisk_queue("general"), "Interface": f"PJSIP/{member}",
                          "Paused": "true" if paused else "false", "Reason": "test_kpi"})


async def test_given_answered_and_abandoned_calls_then_ivr_stats_counts_them_as_by_hand(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, state: BedState,
) -> None:
    start = datetime.now().astimezone()
    since = (start - timedelta(minutes=10)).isoformat(timespec="seconds")
    await all_closed(tickets, (start - timedelta(hours=1)).timestamp())
    before = await stats(state, since)
    window = kpi.window("test", start - timedelta(minutes=10), start + timedelta(hours=1), start + timedelta(hours=1))

    # 1: answered at once by whichever seat rings first; counted while the call is still up
    quick = phones.next_caller()
    seats = await phones.seats("general", quick)
    connected = ami.wait_for("AgentConnect", for_caller(quick))
    sipp, _ = await phones.call("12345", TO_GENERAL, hold_ms=60_000, caller=quick)
    channel = (await asyncio.wait_for(connected, 30))["Channel"]
    answered = counted(before, "queues", "general")["answered"] + 1
    await until(lambda: _answered(tickets, window, answered), 10, 0.05)
    assert not (await tickets.recent_for_caller(quick, 0))[0].disposition  # still talking
    await ami.action({"Action": "Hangup", "Channel": channel})
    assert await sipp.wait(20) == 0, sipp.output()
    for seat in seats.values():
        await seat.stop()

    # 2: hangs up as soon as it is queued; 3: hangs up after some 8 s of music (seats paused)
    at_once, patient = phones.next_caller(), phones.next_caller()
    try:
        await set_paused(ami, engine, True)
        joined = ami.wait_for("QueueCallerJoin", for_caller(at_once))
        sipp, _ = await phones.call("12345", TO_GENERAL, hold_ms=60_000, caller=at_once)
        await ami.action({"Action": "Hangup", "Channel": (await asyncio.wait_for(joined, 30))["Channel"]})
        assert await sipp.wait(20) == 0, sipp.output()
        sipp, _ = await phones.call("12345", TO_GENERAL, hold_ms=10_000, caller=patient)
        assert await sipp.wait(30) == 0, sipp.output()
    finally:
        await set_paused(ami, engine, False)

    # 4: its first seat rings out (15 s); every seat is paused while the phones change, then
    # the next one rung answers
    late = phones.next_caller()
    ringing = await phones.seats("general", late, mode="noanswer")
    rang_out = ami.wait_for("AgentRingNoAnswer", for_caller(late))
    late_connected = ami.wait_for("AgentConnect", for_caller(late))
    sipp, _ = await phones.call("12345", TO_GENERAL, hold_ms=60_000, caller=late)
    await asyncio.wait_for(rang_out, 40)
    try:
        await set_paused(ami, engine, True)
        for peer in ringing.values():
            await peer.stop()
        await phones.seats("general", late)
    finally:
        await set_paused(ami, engine, False)
    await ami.action({"Action": "Hangup", "Channel": (await asyncio.wait_for(late_connected, 30))["Channel"]})
    assert await sipp.wait(20) == 0, sipp.output()

    # the premises of the hand count, from the tickets
    calls = {c: await closed_ticket(tickets, c, timeout=40) for c in (quick, at_once, patient, late)}
    visits = {c: t.queue_visits for c, t in calls.items()}
    assert all(len(v) == 1 and v[0].queue == "general" for v in visits.values()), visits
    waits = {c: v[0].wait_seconds for c, v in visits.items()}
    assert [visits[c][0].outcome for c in (quick, at_once, patient, late)] == [
        "answered", "abandoned", "abandoned", "answered"]
    assert waits[quick] < 15 and waits[at_once] <= 5 < waits[patient] and 15 < waits[late] <= 30, waits
    assert [await tickets.phases(t.linkedid) for t in calls.values()] == [{"opened", "queue:general:1", "closed"}] * 4

    # by hand: 4 offered; answered 2 (1 within 15 s, 2 within 30 s); abandoned 2 (1 within 5 s)
    wait_ms = {c: round(w * 1000) for c, w in waits.items()}
    expected = {"offered": 4, "answered": 2, "answered_15": 1, "answered_30": 2, "abandoned": 2, "abandoned_5": 1,
                "overflowed": 0, "callbacks": 0, "lost": 0, "wait_ms": sum(wait_ms.values()),
                "answer_wait_ms": wait_ms[quick] + wait_ms[late]}
    after = await stats(state, since)
    for scope, name in (("queues", "general"), ("lines", "12345")):
        old, new = counted(before, scope, name), counted(after, scope, name)
        assert {c: new[c] - old[c] for c in COUNTERS} == expected, (scope, name)
        assert new["max_wait_ms"] == max(old["max_wait_ms"], wait_ms[late])


async def _answered(tickets: TicketStore, window: kpi.Window, answered: int) -> bool:
    report = await tickets.kpi_report(window)
    return bool(report["queues"].get("general", {}).get("answered", 0) >= answered)
