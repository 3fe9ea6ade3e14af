"""A citizen is never dropped because the engine failed: unreachable, crashed mid-call, or
frozen past the dialplan's time limit, the call still reaches the general 7×24 queue, where a
real SIP seat (sipp) answers. Nor is a call record: an engine killed before it wrote one to
Redis leaves it in its journal, and the next engine replays it."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import Phones, call_record, streamed_callers, until
from testbed.sipp import keys
from testbed.sipp import Sipp
from queues.model import serving

@dataclass
class WatchedCall:
    caller: str
    sipp: Sipp
    in_menu: asyncio.Future[Any]  # the engine's first AGI command on this call
    connected: asyncio.Future[Any]  # a seat answered (AgentConnect)
    hung_up: asyncio.Future[Any]


async def call_with_seats_ready(phones: Phones, ami: AmiClient, hold_ms: int) -> WatchedCall:
    """General seats online, then a silent citizen call to 12345, watched through AMI."""
    caller = phones.next_caller()
    await phones.seats("general", caller)

    def this_call(event: Any) -> bool:
        return bool(event.get("CallerIDNum") == caller)

    watch = [ami.wait_for(name, this_call) for name in ("AGIExecStart", "AgentConnect", "Hangup")]
    sipp, _ = await phones.call("12345", [], hold_ms=hold_ms, caller=caller)
    return WatchedCall(caller, sipp, *watch)


async def test_given_the_engine_is_down_when_a_citizen_calls_then_a_general_seat_answers(
    bed: TestBed, phones: Phones, ami: AmiClient
) -> None:
    bed.kill_engine()
    call = await call_with_seats_ready(phones, ami, hold_ms=3000)

    event = await asyncio.wait_for(call.connected, 30)
    assert event["Queue"] == "q-general"
    assert event["Interface"].removeprefix("PJSIP/") in serving("general", bed.settings.agents, bed.settings.queues)
    assert await call.sipp.wait(20) == 0, call.sipp.output()


async def test_given_the_engine_crashes_mid_menu_then_the_call_still_reaches_a_general_seat(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient
) -> None:
    call = await call_with_seats_ready(phones, ami, hold_ms=8000)
    await asyncio.wait_for(call.in_menu, 20)
    bed.kill_engine()  # SIGKILL while the engine is talking to the call

    event = await asyncio.wait_for(call.connected, 30)
    assert event["Queue"] == "q-general"
    assert await call.sipp.wait(20) == 0, call.sipp.output()


async def test_given_a_flow_outlasts_the_engine_deadline_then_the_call_goes_to_a_general_seat(
    bed: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    bed.kill_engine()
    bed.start_engine({"IVR_AGI_CALL_TIMEOUT": "2"})  # the greeting alone lasts longer
    try:
        call = await call_with_seats_ready(phones, ami, hold_ms=6000)

        event = await asyncio.wait_for(call.connected, 20)
        assert event["Queue"] == "q-general"
        assert await call.sipp.wait(20) == 0, call.sipp.output()
        record = await call_record(redis, call.caller)
        assert record["route"]["type"] == "fallback" and record["dialplan_fallback"] is True
        assert record["error"] == "engine deadline of 2 s exceeded"
        assert [v["node"] for v in record["visits"]][:2] == ["caller", "greeting"]  # what happened before the deadline is kept
    finally:
        bed.kill_engine()


async def test_given_the_engine_freezes_then_the_call_waits_and_a_supervisor_kill_frees_it_to_a_seat(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient
) -> None:
    """Asterisk keeps waiting on a frozen engine's AGI socket (dead-AGI mode, even past the
    dialplan's timeout); the call is not dropped meanwhile, and once the systemd watchdog
    (deploy/ivr12345.service) kills the engine, the call goes on to a seat."""
    assert bed.state
    call = await call_with_seats_ready(phones, ami, hold_ms=12000)
    await asyncio.wait_for(call.in_menu, 20)
    os.kill(bed.state.engine_pid, signal.SIGSTOP)
    try:
        done, _ = await asyncio.wait({call.hung_up}, timeout=3)
        assert not done, "the call must not be dropped while the engine is frozen"
    finally:
        bed.kill_engine()  # what the watchdog does

    event = await asyncio.wait_for(call.connected, 20)
    assert event["Queue"] == "q-general"
    assert await call.sipp.wait(30) == 0, call.sipp.output()


async def test_a_record_not_yet_in_redis_when_the_engine_dies_is_replayed_by_the_next_engine(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient, redis: Any
) -> None:
    bed.kill_engine()
    bed.start_engine({"IVR_REDIS_RECORD_FLUSH_MS": "10000"})  # records wait 10 s for their group commit
    spool = bed.dir / "state" / "spool"
    caller = phones.next_caller()
    try:
        joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller)
        sipp, _ = await phones.call("12345", keys("2"), hold_ms=1500, caller=caller)
        assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-general"
        await until(lambda: any(caller in p.read_text() for p in spool.glob("calls-server-*.jsonl")), timeout=10)
        streamed = await streamed_callers(redis)
        assert caller not in streamed  # still inside the window: only the journal has it
        bed.kill_engine()  # SIGKILL: no shutdown, no flush
        assert await sipp.wait(30) == 0
    finally:
        bed.kill_engine()
        bed.start_engine()  # the default window; its flusher finds the dead engine's journal
    record = await call_record(redis, caller, timeout=30)
    assert record["keys"] == ["2"] and record["route"]["queue"] == "general"
    streamed = await streamed_callers(redis)
    assert streamed.count(caller) == 1
    await until(lambda: not any(spool.glob("calls-*")), timeout=10)
