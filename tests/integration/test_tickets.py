"""Every call becomes exactly one ticket stub, with the right disposition and times, followed
live over AMI: answered (and rated), abandoned in the greeting or in the queue, a sub-center
transfer that fails and falls back to the general queue."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, for_caller, hang_up_all, ticket_events
from testbed.sipp import Key, keys
from queues.model import serving


pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")



def t(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def test_given_an_agent_answers_and_hangs_up_when_the_caller_rates_4_then_one_answered_ticket_with_the_rating(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    caller = phones.next_caller()
    await phones.seats("general", caller, mode="hangup", talk_ms=2000)
    asked = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrSurvey" and e.get("CallerIDNum") == caller)
    # 1 in the menu; the agent ends the call after 2 s; 4 during the survey prompt
    sipp, _ = await phones.call("12345", keys("1") + [Key("4", 7000)], hold_ms=30_000, caller=caller)
    await asyncio.wait_for(asked, 40)

    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "answered" and ticket.closed_by == "ami"
    assert ticket.line == "12345" and ticket.line_mode == "main" and ticket.caller == caller
    assert ticket.request_type == "consult" and ticket.request_type_source == "ivr"
    assert ticket.queue == "general" and ticket.agent in serving("general", engine.settings.agents, engine.settings.queues)
    assert t(ticket.received) < t(ticket.queued) < t(ticket.answered) < t(ticket.ended)
    assert ticket.wait_seconds is not None and 0 <= ticket.wait_seconds < 5
    assert ticket.talk_seconds is not None and 1 <= ticket.talk_seconds <= 4
    assert ticket.hangup_by == "agent"
    assert ticket.satisfaction == 4 and ticket.satisfaction_status == "rated"
    assert ticket.ivr.keys == ["1"] and ticket.ivr.nodes[:2] == ["main/greeting", "main/menu"]
    assert ticket.deadline is not None and ticket.deadline.rule.startswith("3 working days")
    assert ticket.number.split("-")[1] == "12345"
    assert await ticket_events(redis, ticket.linkedid) == ["opened", "closed"]
    assert await sipp.wait(30) == 0, sipp.output()


async def test_given_the_caller_hangs_up_in_the_greeting_then_abandoned_in_the_ivr(
    engine: TestBed, phones: Phones, tickets: TicketStore,
) -> None:
    sipp, caller = await phones.call("12345", [], hold_ms=1500)
    assert await sipp.wait(20) == 0, sipp.output()

    ticket = await closed_ticket(tickets, caller)
    assert ticket.disposition == "abandoned_ivr" and ticket.hangup_by == "caller"
    assert ticket.ivr.route == "hangup" and ticket.ivr.nodes[0] == "main/greeting"
    assert not ticket.queued and not ticket.answered
    assert 1.0 <= (t(ticket.ended) - t(ticket.received)).total_seconds() < 4


async def test_given_no_seat_answers_when_the_caller_hangs_up_in_the_queue_then_abandoned_in_the_queue_with_the_wait(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("12345", keys("0", first_ms=500), hold_ms=6000, caller=caller)
    await asyncio.wait_for(joined, 30)
    assert await sipp.wait(30) == 0, sipp.output()

    ticket = await closed_ticket(tickets, caller)
    assert ticket.disposition == "abandoned_queue" and ticket.queue == "general" and not ticket.answered
    assert ticket.wait_seconds is not None and 2 <= ticket.wait_seconds <= 6
    assert ticket.hangup_by == "caller"


@pytest.mark.parametrize(("gateway", "result", "cause"), [
    pytest.param("busy", "BUSY", "17 User busy", id="busy"),
    pytest.param(None, "NOANSWER", "", id="down"),  # nothing listens: rings out its 20 s timeout
])
async def test_given_the_tax_gateway_fails_then_transfer_failed_with_its_cause_and_answered_in_the_fallback_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, gateway: str | None, result: str,
    cause: str,
) -> None:
    caller = phones.next_caller()
    if gateway:
        await phones.subcenter("tax", caller, gateway)  # type: ignore[arg-type]
    await phones.seats("general", caller)
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    sipp, _ = await phones.call("12366", [], hold_ms=45_000, caller=caller)
    await asyncio.wait_for(connected, 45)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()

    ticket = await closed_ticket(tickets, caller)
    [transfer] = ticket.transfers
    assert (transfer.kind, transfer.target, transfer.number, transfer.result) == ("subcenter", "tax", "12366", result)
    assert transfer.then == "queue general" and (transfer.cause == cause or not gateway and transfer.cause)
    assert ticket.disposition == "transfer_failed"
    assert ticket.after_transfer == f"queue general: answered by {ticket.agent}"
    assert ticket.line == "12366" and ticket.line_mode == "subcenter"
