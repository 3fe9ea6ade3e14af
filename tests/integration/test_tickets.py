"""Every call becomes exactly one ticket stub, with the right disposition and times, followed
live over AMI: answered (and rated), abandoned in the greeting or in the queue, a sub-center
transfer that fails and falls back to the general queue, a seat that answered 486 at once (a
collision, not a seat that did not answer)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest

from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, for_caller, hang_up_all, only_seat, ticket_events, trunk_state, until
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
    assert ticket.ivr.keys == ["1"] and ticket.ivr.nodes[:3] == ["main/caller", "main/greeting", "main/menu"]
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
    assert ticket.ivr.route == "hangup" and ticket.ivr.nodes[:2] == ["main/caller", "main/greeting"]
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


async def test_given_the_tax_gateway_is_busy_then_transfer_failed_with_its_cause_and_answered_in_the_fallback_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    caller = phones.next_caller()
    await phones.subcenter("tax", caller, "busy")
    await phones.seats("general", caller)
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    sipp, _ = await phones.call("12366", [], hold_ms=45_000, caller=caller)
    await asyncio.wait_for(connected, 45)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()

    ticket = await closed_ticket(tickets, caller)
    [transfer] = ticket.transfers
    assert (transfer.kind, transfer.target, transfer.number, transfer.result) == ("subcenter", "tax", "12366", "BUSY")
    assert transfer.then == "queue general" and transfer.cause == "17 User busy"
    assert ticket.disposition == "transfer_failed"
    assert ticket.after_transfer == f"queue general: answered by {ticket.agent}"
    assert ticket.line == "12366" and ticket.line_mode == "subcenter"


async def test_given_the_tax_gateway_is_down_then_it_is_not_dialed_and_the_caller_is_queued_at_once_as_unavailable(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    """Issue 22 item 8: the trunk is qualified, so a gateway where nothing listens is known down
    before the call (it used to ring out its 20 s as NOANSWER): Dial fails at once with
    CHANUNAVAIL, the caller hears subcenter_unavailable and goes straight to the queue."""
    caller = phones.next_caller()
    await trunk_state(engine, "tax", reachable=False)  # nothing listens on the tax gateway's port
    await phones.seats("general", caller)
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    told = ami.wait_for("Newexten", lambda e: e.get("CallerIDNum") == caller
                        and "subcenter_unavailable" in e.get("AppData", ""))
    sipp, _ = await phones.call("12366", [], hold_ms=30_000, caller=caller)
    await asyncio.wait_for(told, 20)
    await asyncio.wait_for(connected, 30)
    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()

    ticket = await closed_ticket(tickets, caller)
    [transfer] = ticket.transfers
    assert (transfer.kind, transfer.target, transfer.number, transfer.result) == ("subcenter", "tax", "12366",
                                                                                  "CHANUNAVAIL")
    assert transfer.then == "queue general" and transfer.cause == "3 No route to destination (gateway unreachable)"
    assert ticket.disposition == "transfer_failed" and ticket.queue == "general"
    # the dead gateway costs nothing but its truthful notice: from the attempt to the queue only
    # subcenter_unavailable plays (no ring-out, no 13 s offer)
    notice = _prompt_seconds(engine, "subcenter_unavailable")
    assert notice < 2.5  # the promise: in the queue within 3 s of the try, notice included
    to_queue = (t(ticket.queued) - t(transfer.at)).total_seconds()
    print(f"answer → attempt {(t(transfer.at) - t(ticket.received)).total_seconds():.2f} s, attempt → queue "
          f"{to_queue:.2f} s (notice {notice:.2f} s), answer → queue {(t(ticket.queued) - t(ticket.received)).total_seconds():.2f} s")
    assert to_queue < notice + 3


def _prompt_seconds(bed: TestBed, name: str) -> float:
    """How long prompt ``name`` plays: its 8 kHz μ-law file in the bed (one byte a sample)."""
    return (bed.dir / "data/sounds/zh/ivr12345" / f"{name}.ulaw").stat().st_size / 8000


async def test_given_a_seat_that_answers_486_at_once_then_a_collision_on_the_ticket_not_a_seat_that_did_not_answer(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    """What app_queue sees of the proxies' seat lock on a cluster (docs/cluster.md), here from the
    seat's own phone: 486 at once. Asterisk's real events (AgentRingNoAnswer with RingTime 0, the
    seat channel's Hangup with TechCause 486) make a collision on the ticket; the next seat answers."""
    caller = phones.next_caller()
    wrapup = engine.settings.queues["general"].wrapup
    await until(lambda: _rested(ami, ["agent1001", "agent1002"], wrapup), 30)  # an earlier test's call: app_queue waits
    async with only_seat(engine, ami, "agent1001"):
        turned_away = ami.wait_for("AgentRingNoAnswer", lambda e: e.get("CallerIDNum") == caller)
        seat_gone = ami.wait_for("Hangup", lambda e: e.get("Channel", "").startswith("PJSIP/agent1001-")
                                 and e.get("ConnectedLineNum") == caller)
        connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
        busy = await phones.agent("agent1001", caller, mode="busy")
        await phones.agent("agent1002", caller, mode="answer")
        sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=8000, caller=caller)
        missed = await asyncio.wait_for(turned_away, 40)
        for seat, paused in (("agent1001", "true"), ("agent1002", "false")):  # before app_queue's retry (1 s)
            await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{seat}", "Paused": paused})
        hangup = await asyncio.wait_for(seat_gone, 10)
        assert (missed["Interface"], missed["RingTime"], hangup.get("TechCause")) == ("PJSIP/agent1001", "0", "486")
        assert (await asyncio.wait_for(connected, 30))["Interface"] == "PJSIP/agent1002"
        assert await sipp.wait(40) == 0, sipp.output()
        assert await busy.wait(10) == 0, busy.output()
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert [c.agent for c in ticket.seat_collisions] == ["agent1001"]
    assert [(a.agent, a.answered) for a in ticket.agents_rung] == [("agent1002", True)]
    assert ticket.agent == "agent1002" and ticket.disposition == "answered"
    assert [e.event for e in ticket.timeline if e.event.startswith("agent")][:2] == ["agent rung", "agent taken"]


async def _rested(ami: AmiClient, seats: list[str], wrapup: int) -> bool:
    """Whether every one of ``seats`` ended its last call more than ``wrapup`` s ago (Asterisk's clock)."""
    listing = await ami.action({"Action": "QueueStatus", "Queue": "q-general"}, as_list=True)
    last = {e.get("Name"): int(e.get("LastCall") or 0) for e in listing if e.get("Event") == "QueueMember"}
    return all(time.time() - last.get(seat, 0) > wrapup + 1 for seat in seats)
