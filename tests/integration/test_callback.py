"""Queued callback end to end: a citizen waiting in the general queue presses 1, hangs up and
keeps their place; when a seat comes free the engine calls them back (a sipp UAS as the
citizen's phone) and connects them to that seat; the outcome is on the ticket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, callback_event, closed_ticket, for_caller, pause_all, until
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def request_callback(phones: Phones, ami: AmiClient, tickets: TicketStore) -> tuple[str, str]:
    """A caller reaches the general queue, presses 1 after the offer and hangs up; returns
    (caller, the ticket's linkedid) once the ticket says a callback is pending."""
    caller = phones.next_caller()
    requested = ami.wait_for("UserEvent", lambda e: callback_event("requested")(e) and for_caller(caller)(e))
    sipp, _ = await phones.call("12345", [Key("0", 1500), Key("1", 5000)], hold_ms=20_000, caller=caller)
    await asyncio.wait_for(requested, 30)
    assert await sipp.wait(20) == 0, sipp.output()
    ticket = await closed_ticket(tickets, caller, timeout=20)
    assert ticket.disposition == "callback" and ticket.callback and ticket.callback["status"] == "pending"
    return caller, ticket.linkedid


async def test_given_the_citizen_is_busy_at_the_first_callback_then_the_second_attempt_reaches_them(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    await pause_all(engine, ami, True)
    try:
        caller, linkedid = await request_callback(phones, ami, tickets)
        results: list[str] = []
        ami.on("UserEvent", lambda e: results.append(e["DialStatus"]) if callback_event("result", Of=linkedid)(e) else None)
        busy = await phones.citizen_phone("12345", mode="busy")
        first_seat = await phones.agent("agent1001", caller)
        await ami.action({"Action": "QueuePause", "Interface": "PJSIP/agent1001", "Paused": "false"})
        assert await busy.wait(30) == 0, busy.output()
        assert await first_seat.wait(20) == 0, first_seat.output()  # the seat's call ends with the attempt
        await until(lambda: results == ["BUSY"], 10)

        phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=1000)
        seat = await phones.agent("agent1001", caller)
        assert await phone.wait(40) == 0, phone.output()  # the next attempt, retry_after (5 s) later
        assert await seat.wait(20) == 0, seat.output()
        await until(lambda: results == ["BUSY", "ANSWER"], 10)

        async def called_back() -> Any:
            t = await tickets.get(linkedid)
            return t if t and t.callback and t.callback.get("status") == "answered" else None

        ticket = await until(called_back, 20)
        assert [a["result"] for a in ticket.callback["attempts"]] == ["BUSY", "ANSWER"]
        assert ticket.disposition == "answered" and ticket.agent == "agent1001"
    finally:
        await pause_all(engine, ami, False)


async def test_given_a_caller_who_chose_a_callback_when_a_seat_comes_free_then_the_engine_calls_them_back(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    await pause_all(engine, ami, True)
    try:
        caller = phones.next_caller()
        requested = ami.wait_for("UserEvent", lambda e: callback_event("requested")(e) and for_caller(caller)(e))
        stand_in_joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller
                                       and e.get("Channel", "").startswith("Local/cb@ivr-callback-queue"))
        # 0 in the menu (one key to a human), then 1 once the 2 s offer wait is over (test config)
        sipp, _ = await phones.call("12345", [Key("0", 1500), Key("1", 5000)], hold_ms=20_000, caller=caller)
        event = await asyncio.wait_for(requested, 30)
        assert (event["Queue"], event["Number"]) == ("general", caller)
        assert await sipp.wait(20) == 0, sipp.output()  # Asterisk hung up after the confirmation

        ticket = await closed_ticket(tickets, caller, timeout=20)
        assert ticket.disposition == "callback" and ticket.callback and ticket.callback["status"] == "pending"
        assert [v.outcome for v in ticket.queue_visits] == ["callback"]
        linkedid = ticket.linkedid

        stand_in = await asyncio.wait_for(stand_in_joined, 15)  # the engine keeps the caller's place
        assert stand_in["Queue"] == "q-general"

        # the callback shows the hotline's number; the citizen ends the call after 2 s
        phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=2000)
        seat = await phones.agent("agent1001", caller)
        dialing = ami.wait_for("UserEvent", callback_event("dialing", Of=linkedid))
        answered = ami.wait_for("UserEvent", callback_event("answered", Of=linkedid))
        result = ami.wait_for("UserEvent", callback_event("result", Of=linkedid))
        await ami.action({"Action": "QueuePause", "Interface": "PJSIP/agent1001", "Paused": "false"})
        assert (await asyncio.wait_for(dialing, 20))["Agent"].startswith("PJSIP/agent1001")
        await asyncio.wait_for(answered, 20)
        assert (await asyncio.wait_for(result, 30))["DialStatus"] == "ANSWER"
        assert await seat.wait(20) == 0, seat.output()
        assert await phone.wait(20) == 0, phone.output()

        async def called_back() -> Any:
            t = await tickets.get(linkedid)
            return t if t and t.callback and t.callback.get("status") == "answered" else None

        ticket = await until(called_back, 20)
        assert ticket.disposition == "answered" and ticket.agent == "agent1001" and ticket.answered
        assert [a["result"] for a in ticket.callback["attempts"]] == ["ANSWER"]
    finally:
        await pause_all(engine, ami, False)
