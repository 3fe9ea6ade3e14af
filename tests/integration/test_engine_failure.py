"""A citizen is never dropped because the engine failed: unreachable, crashed mid-call, or
frozen past the dialplan's time limit, the call still reaches the general 7×24 queue, where a
real SIP seat (sipp) answers."""

from __future__ import annotations

import asyncio
import os
import signal

from ivr.ami.client import AmiClient
from ivr.testbed.bed import TestBed
from ivr.testbed.calls import Phones, call_record

GENERAL_SEATS = ("agent1001", "agent1002", "agent1003")


async def seats_answer(phones: Phones) -> None:
    for name in GENERAL_SEATS:
        await phones.agent(name, "answer")


async def test_given_the_engine_is_down_when_a_citizen_calls_then_a_general_seat_answers(
    bed: TestBed, phones: Phones, ami: AmiClient
) -> None:
    bed.kill_engine()
    await seats_answer(phones)
    caller = phones.next_caller()
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", [], hold_ms=3000, caller=caller)

    event = await asyncio.wait_for(connected, 30)
    assert event["Queue"] == "q-general"
    assert event["Interface"].removeprefix("PJSIP/") in GENERAL_SEATS
    assert await sipp.wait(20) == 0, sipp.output()


async def test_given_the_engine_crashes_mid_menu_then_the_call_still_reaches_a_general_seat(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient
) -> None:
    await seats_answer(phones)
    caller = phones.next_caller()
    in_menu = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == caller)
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", [], hold_ms=8000, caller=caller)
    await asyncio.wait_for(in_menu, 20)
    bed.kill_engine()  # SIGKILL while the engine is talking to the call

    event = await asyncio.wait_for(connected, 30)
    assert event["Queue"] == "q-general"
    assert await sipp.wait(20) == 0, sipp.output()


async def test_given_a_flow_outlasts_the_engine_deadline_then_the_call_goes_to_a_general_seat(
    bed: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    bed.kill_engine()
    bed.start_engine({"IVR_AGI_CALL_TIMEOUT": "2"})  # the greeting alone lasts longer
    try:
        await seats_answer(phones)
        caller = phones.next_caller()
        connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)

        sipp, _ = await phones.call("12345", [], hold_ms=6000, caller=caller)

        event = await asyncio.wait_for(connected, 20)
        assert event["Queue"] == "q-general"
        assert await sipp.wait(20) == 0, sipp.output()
        record = await call_record(redis, caller)
        assert record["route"]["type"] == "fallback" and record["dialplan_fallback"] is True
        assert record["error"] == "engine deadline of 2 s exceeded"
        assert record["visits"][0]["node"] == "greeting"  # what happened before the deadline is kept
    finally:
        bed.kill_engine()


async def test_given_the_engine_freezes_then_the_call_waits_and_a_supervisor_kill_frees_it_to_a_seat(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient
) -> None:
    """Asterisk keeps waiting on a frozen engine's AGI socket (dead-AGI mode, even past the
    dialplan's timeout); the call is not dropped meanwhile, and once the systemd watchdog
    (deploy/ivr12345.service) kills the engine, the call goes on to a seat."""
    assert bed.state
    await seats_answer(phones)
    caller = phones.next_caller()
    in_menu = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == caller)
    hung_up = ami.wait_for("Hangup", lambda e: e.get("CallerIDNum") == caller)
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", [], hold_ms=12000, caller=caller)
    await asyncio.wait_for(in_menu, 20)
    os.kill(bed.state.engine_pid, signal.SIGSTOP)
    try:
        done, _ = await asyncio.wait({hung_up}, timeout=3)
        assert not done, "the call must not be dropped while the engine is frozen"
    finally:
        bed.kill_engine()  # what the watchdog does

    event = await asyncio.wait_for(connected, 20)
    assert event["Queue"] == "q-general"
    assert await sipp.wait(30) == 0, sipp.output()
