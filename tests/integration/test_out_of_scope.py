"""Out-of-scope matters (不予受理) on the real Asterisk: the flow node (8 in the demo line's menu)
plays the petition explanation and the ticket says so; an agent keys *83 on the softphone
during the call, the caller hears the explanation and the ticket says which agent marked it;
the caller keying the same code marks nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import AgiTrace, Phones, closed_ticket, for_caller, only_seat
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def test_given_the_out_of_scope_node_then_the_caller_hears_the_explanation_and_the_ticket_says_which_matter(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    sipp, _ = await phones.call("8000", [Key("8", 1500)], hold_ms=16_000, caller=caller)  # 8 during the greeting
    await asyncio.wait_for(joined, 30)  # after the explanation, a seat as the flow says
    assert "ivr12345/out_of_scope_petition" in trace.sounds()
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.out_of_scope is not None
    assert (ticket.out_of_scope.matter, ticket.out_of_scope.title, ticket.out_of_scope.by) == ("petition", "信访", "ivr")
    assert ticket.out_of_scope.at >= ticket.received


async def test_given_an_agent_keys_the_petition_code_then_the_caller_hears_it_and_the_ticket_names_the_agent(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    caller = phones.next_caller()
    async with only_seat(engine, ami, "agent1001"):
        marked = ami.wait_for("UserEvent", lambda e: for_caller(caller)(e) and e.get("UserEvent") == "IvrOutOfScope")
        told = ami.wait_for("Newexten", lambda e: for_caller(caller)(e) and e.get("Application") == "Playback"
                            and e.get("AppData", "") == "ivr12345/out_of_scope_petition")
        seat = await phones.agent("agent1001", caller, mode="keys", keys="*83", talk_ms=3000)
        sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=20_000, caller=caller)
        event = await asyncio.wait_for(marked, 40)
        assert event["Matter"] == "petition" and event["Uniqueid"] == event["Linkedid"]  # on the caller's channel
        await asyncio.wait_for(told, 10)
        assert await seat.wait(30) == 0, seat.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert ticket.out_of_scope is not None and ticket.agent == "agent1001"
        assert (ticket.out_of_scope.matter, ticket.out_of_scope.by, ticket.out_of_scope.agent) == ("petition", "agent", "agent1001")


async def test_given_the_caller_keys_the_same_code_then_nothing_is_marked(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: Any,
) -> None:
    """Only agents' channels have the feature keys: a caller keying *83 in the call marks nothing."""
    caller = phones.next_caller()
    async with only_seat(engine, ami, "agent1001"):
        connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
        keyed = ami.wait_for("DTMFEnd", lambda e: for_caller(caller)(e) and e.get("Digit") == "3"
                             and e.get("Uniqueid") == e.get("Linkedid") and e.get("Direction") == "Received")
        seat = await phones.agent("agent1001", caller, mode="answer")
        presses = [Key("0", 1500), Key("*", 5000), Key("8", 300), Key("3", 300)]
        sipp, _ = await phones.call("12345", presses, hold_ms=4000, caller=caller)
        answered = await asyncio.wait_for(connected, 30)
        digit = await asyncio.wait_for(keyed, 30)  # the code reached Asterisk from the caller, in the bridge
        assert float(digit["Timestamp"]) > float(answered["Timestamp"])
        assert await sipp.wait(30) == 0, sipp.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
        assert ticket.answered and ticket.agent == "agent1001"
        assert ticket.out_of_scope is None
        assert await seat.wait(20) == 0, seat.output()
