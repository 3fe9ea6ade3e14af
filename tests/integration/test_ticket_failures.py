"""No call loses its ticket, and none gets two, whatever fails while it is up: the engine
killed in the menu (picked up again, or finished from the CDR), Redis down, the AMI link cut,
Asterisk itself crashing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import BedState, TestBed
from testbed.calls import Phones, closed_ticket, followed_since, for_caller, hang_up_all, ticket_events, until
from testbed.ports import PortAllocator
from testbed.proxy import TcpProxy
from testbed.sipp import keys
from queues.model import serving


pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")



async def test_given_the_engine_is_killed_in_the_menu_when_it_starts_again_during_the_call_then_one_ticket(
    bed: TestBed, engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    caller = phones.next_caller()
    await phones.seats("general", caller)
    in_menu = ami.wait_for("AGIExecStart", for_caller(caller))
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    sipp, _ = await phones.call("12345", [], hold_ms=60_000, caller=caller)
    await asyncio.wait_for(in_menu, 20)
    await until(lambda: tickets.recent_for_caller(caller, 0))  # the opened ticket is in Redis
    bed.kill_engine()  # SIGKILL while the caller hears the greeting
    await asyncio.wait_for(connected, 30)  # the dialplan's fallback: a general seat answers
    restarted = time.time()
    bed.start_engine()
    await followed_since(tickets, state, restarted)
    await hang_up_all(ami)

    ticket = await closed_ticket(tickets, caller)
    assert ticket.disposition == "answered" and ticket.closed_by == "ami"
    assert ticket.agent in serving("general", bed.settings.agents, bed.settings.queues) and ticket.answered
    assert any(e.event == "picked up again" for e in ticket.timeline)
    assert await ticket_events(redis, ticket.linkedid) == ["opened", "closed"]


async def test_given_a_call_that_runs_while_the_engine_is_dead_then_the_next_engine_writes_its_ticket_from_the_cdr(
    bed: TestBed, engine: TestBed, phones: Phones, tickets: TicketStore, redis: Any,
) -> None:
    bed.kill_engine()
    caller = phones.next_caller()
    await phones.seats("general", caller)
    sipp, _ = await phones.call("12345", [], hold_ms=4000, caller=caller)
    assert await sipp.wait(30) == 0, sipp.output()
    bed.start_engine()

    ticket = await closed_ticket(tickets, caller)
    assert ticket.closed_by == "cdr" and ticket.disposition == "answered"
    assert ticket.line == "12345" and ticket.caller == caller and ticket.ivr.route == "fallback"
    assert ticket.queue == "general" and ticket.agent and ticket.talk_seconds is not None
    assert await ticket_events(redis, ticket.linkedid) == ["closed"]


async def test_given_redis_is_killed_during_calls_when_it_returns_then_every_call_has_its_ticket_exactly_once(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    bed.stop_redis()
    try:
        callers = []
        for presses in ("1", ""):
            caller = phones.next_caller()
            sipp, _ = await phones.call("12345", keys(presses) if presses else [], hold_ms=2500, caller=caller)
            assert await sipp.wait(30) == 0, sipp.output()
            callers.append(caller)
    finally:
        bed.start_redis()

    for caller in callers:
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert ticket.disposition in ("abandoned_ivr", "abandoned_queue")
        assert await ticket_events(redis, ticket.linkedid) == ["opened", "closed"]
    spool = bed.dir / "state" / "spool"
    await until(lambda: not any(spool.glob("tickets-*")), timeout=10)  # journal retired


async def test_given_the_ami_link_is_cut_while_the_caller_waits_then_the_ticket_still_completes(
    bed: TestBed, engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    proxy = TcpProxy(state.ami_port)
    port = await proxy.start(PortAllocator().one())  # below the ephemeral range (no self-connect)
    bed.kill_engine()
    bed.start_engine({"IVR_AMI_PORT": str(port)})
    try:
        await followed_since(tickets, state, 0, ami_port=port)
        caller = phones.next_caller()
        await phones.seats("general", caller)
        joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        sipp, _ = await phones.call("12345", keys("2"), hold_ms=60_000, caller=caller)
        await asyncio.wait_for(joined, 30)
        await proxy.cut()  # the engine misses the agent answering
        await asyncio.wait_for(connected, 30)
        back = time.time()
        await proxy.start(port)
        await followed_since(tickets, state, back, ami_port=port)
        await hang_up_all(ami)

        ticket = await closed_ticket(tickets, caller)
        assert ticket.disposition == "answered" and ticket.agent and ticket.request_type == "complaint"
        assert proxy.connections >= 2  # it reconnected by itself
        assert await ticket_events(redis, ticket.linkedid) == ["opened", "closed"]
    finally:
        await proxy.close()
        bed.kill_engine()
        bed.start_engine()


async def test_given_asterisk_crashes_during_a_call_then_the_call_is_closed_with_that_cause(
    bed: TestBed, engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("12345", keys("0", first_ms=500), hold_ms=8000, caller=caller)
    await asyncio.wait_for(joined, 30)
    crashed = time.time()
    await asyncio.to_thread(bed.crash_asterisk)
    await followed_since(tickets, state, crashed)

    ticket = await closed_ticket(tickets, caller)
    assert ticket.disposition == "error" and ticket.closed_by == "lost"
    assert ticket.hangup_cause == "cut by an Asterisk restart" and ticket.hangup_by == "system"
    assert ticket.queue == "general" and ticket.queued
    await sipp.wait(30)  # its BYE meets an Asterisk that never knew the call
