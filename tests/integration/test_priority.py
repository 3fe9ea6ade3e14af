"""Who a seat answers first, on a real Asterisk: a registered elderly caller (适老化) is queued
without hearing the menu, at the elderly priority; a caller who presses the one-key-to-human
key waits at the one-key priority; each ticket says why. The priority is read back from
Asterisk's own queue (QueueStatus), not from what the engine meant to set."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import asterisk_queue
from tickets.store import TicketStore
from testbed.bed import BedState, TestBed
from testbed.calls import AgiTrace, Phones, closed_ticket, for_caller, run_ivr
from testbed.sipp import keys


pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def queue_entry(ami: AmiClient, queue: str, channel: str) -> dict[str, Any]:
    """The caller's entry in Asterisk's queue (``QueueEntry`` of ``QueueStatus``)."""
    listing = await ami.action({"Action": "QueueStatus", "Queue": asterisk_queue(queue)}, as_list=True)
    [entry] = [e for e in listing if e.get("Event") == "QueueEntry" and e.get("Channel") == channel]
    return dict(entry)


async def leave_queue(ami: AmiClient, channel: str) -> None:
    """End the waiting call now (the caller's side hangs up): nothing left to wait for."""
    await ami.action({"Action": "Hangup", "Channel": channel})


async def queued_priority(phones: Phones, ami: AmiClient, caller: str, presses: list[Any]) -> str:
    """The priority Asterisk queued ``caller``'s call to 12345 at (after ``presses``); the call
    is then ended, and its ticket closes."""
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("12345", presses, hold_ms=60_000, caller=caller)
    event = await asyncio.wait_for(joined, 30)
    priority = str((await queue_entry(ami, "general", event["Channel"]))["Priority"])
    await leave_queue(ami, event["Channel"])
    assert await sipp.wait(30) == 0, sipp.output()
    return priority


async def test_given_a_registered_elderly_caller_then_queued_without_the_menu_at_the_elderly_priority(
    engine: TestBed, state: BedState, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    code, out = await run_ivr(state, "elderly", "add", caller, "--reason", "适老化登记表 test")
    assert code == 0 and out.strip() == "1 added, 0 already registered", out
    trace = AgiTrace(ami, caller)
    assert await queued_priority(phones, ami, caller, []) == str(engine.settings.priority.elderly.priority)
    sounds = trace.sounds()
    assert sounds == ["ivr12345/elderly_greeting"], sounds  # no welcome, no menu

    ticket = await closed_ticket(tickets, caller)
    assert ticket.elderly is True and ticket.ivr.flow == "elderly"
    assert (ticket.priority, ticket.priority_reason) == (engine.settings.priority.elderly.priority, "elderly")
    assert ticket.queue == "general" and ticket.disposition == "abandoned_queue"


async def test_given_the_one_key_to_human_key_then_queued_at_the_one_key_priority(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    assert await queued_priority(phones, ami, caller, keys("0", first_ms=500)) == str(engine.settings.priority.one_key)

    ticket = await closed_ticket(tickets, caller)
    assert (ticket.priority, ticket.priority_reason, ticket.elderly) == (engine.settings.priority.one_key, "one_key",
                                                                         False)
    assert ticket.ivr.keys == ["0"] and ticket.ivr.nodes[-1] == "main/human"


async def test_given_a_menu_choice_then_queued_in_time_order_at_priority_0(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    assert await queued_priority(phones, ami, caller, keys("1", first_ms=500)) == "0"
    ticket = await closed_ticket(tickets, caller)
    assert (ticket.priority, ticket.priority_reason) == (0, "")
