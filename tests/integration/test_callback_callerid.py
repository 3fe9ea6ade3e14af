"""A caller ID from outside must not steer the callback (issue 17, finding 1): citizens whose
From user carries a dial string (`&Local/110@ivr-transfers/n`, `@` sent as `%40`), AMI headers
(`,Queue: vip`, `,Linkedid: <another call>`) or an international number ask for a callback on
the real Asterisk; only a callable number is ever dialed, the events carry the call's own
queue and id, and the ticket keeps the raw caller ID and every leg dialed."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import pytest

from ivr.store import keyspace
from ivr.ami.client import AmiClient
from ivr.core.callerid import normalize
from ivr.core.masking import mask_number
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, callback_event, closed_ticket, pause_all, run_ivr, until
from testbed.console import ConsoleSite
from testbed.sipp import Key
from transfer.model import EMERGENCY_TRUNK

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

PRESSES = [Key("0", 1500), Key("1", 5000)]  # one key to a human, then the callback key after the offer


class Dials:
    """Every channel Asterisk creates and every number it dials while a test runs."""

    def __init__(self, ami: AmiClient):
        self.channels: list[str] = []
        self.dials: list[tuple[str, str]] = []  # (DestChannel, DialString)
        self.callbacks: list[dict[str, str]] = []
        ami.on("Newchannel", lambda e: self.channels.append(e.get("Channel", "")))
        ami.on("DialBegin", lambda e: self.dials.append((e.get("DestChannel", ""), e.get("DialString", ""))))
        ami.on("UserEvent", lambda e: self.callbacks.append(e) if e.get("UserEvent") == "IvrCallback" else None)

    def assert_nothing_outside(self, engine: TestBed, callable_numbers: set[str]) -> None:
        """No Local channel but the callback's stand-in, nothing on the emergency trunk or any
        sub-center, and every number dialed out to the carrier is a callable one."""
        agents = tuple(f"PJSIP/{a}-" for a in engine.settings.agents)
        for channel in self.channels:
            assert channel.startswith(("PJSIP/pstn-", *agents, "Local/cb@ivr-callback-queue-")), channel
            assert not channel.startswith(f"PJSIP/{EMERGENCY_TRUNK}-")
        for dest, dial_string in self.dials:
            if dest.startswith("PJSIP/pstn-"):
                number, _, trunk = dial_string.partition("@")
                assert trunk == "pstn" and number in callable_numbers, dial_string
            else:  # a seat rung by the queue, or the engine's Originate of the stand-in
                assert dest.startswith(agents) or dial_string == "cb@ivr-callback-queue/n", (dest, dial_string)


async def test_given_a_caller_id_carrying_a_dial_string_then_the_callback_dials_only_its_digits_and_the_ticket_shows_the_leg(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, browser: Browser, console: ConsoleSite,
) -> None:
    sent = "13900007&Local/110%40ivr-transfers/n"  # today: Dial(PJSIP/13900007&Local/110@ivr-transfers/n@pstn)
    raw = unquote(sent)
    number = normalize(raw)
    assert number == "13900007110"
    seen = Dials(ami)
    await pause_all(engine, ami, True)
    try:
        requested = ami.wait_for("UserEvent", lambda e: callback_event("requested")(e)
                                 and e.get("CallerIDNum") in (number, raw))
        sipp, _ = await phones.call("12345", PRESSES, hold_ms=20_000, caller=sent)
        event = await asyncio.wait_for(requested, 30)
        assert (event["CallerIDNum"], event["Number"]) == (number, number)  # today: the dial string itself
        assert (event["Queue"], event["Linkedid"]) == ("general", event["Uniqueid"])
        assert await sipp.wait(20) == 0, sipp.output()
        ticket = await closed_ticket(tickets, number, timeout=20)
        assert (ticket.caller, ticket.caller_raw) == (number, raw)
        assert ticket.callback and ticket.callback["status"] == "pending"

        phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=1000)
        seat = await phones.agent("agent1001", number)
        result = ami.wait_for("UserEvent", callback_event("result", Of=ticket.linkedid))
        await ami.action({"Action": "QueuePause", "Interface": "PJSIP/agent1001", "Paused": "false"})
        assert (await asyncio.wait_for(result, 40))["DialStatus"] == "ANSWER"
        assert await phone.wait(20) == 0, phone.output()
        assert await seat.wait(20) == 0, seat.output()

        async def called_back() -> Any:
            t = await tickets.get(ticket.linkedid)
            return t if t and t.callback and t.callback.get("status") == "answered" else None

        done = await until(called_back, 20)
        assert [(leg["attempt"], leg["number"], leg["agent"], leg["result"], leg["answered"])
                for leg in done.callback["attempts"]] == [(1, number, "agent1001", "ANSWER", True)]
        assert done.caller_raw == raw
        seen.assert_nothing_outside(engine, {number})
        assert ("PJSIP/pstn", f"{number}@pstn") in {(d.rsplit("-", 1)[0], s) for d, s in seen.dials}

        code, shown = await run_ivr(engine.state, "tickets", "show", done.number)  # type: ignore[arg-type]
        assert code == 0, shown
        assert "callback leg 1: 139****7110 by agent1001 at " in shown and ": ANSWER, answered" in shown
        assert mask_number(raw) in shown and raw not in shown  # the raw caller ID, masked like the caller

        browser.sign_in(console.account("supervisor")).open(f"/tickets/{done.number}")
        assert browser.text("#caller-raw").startswith(mask_number(raw))
        legs = [[c.text for c in row.find_elements("css selector", "td")] for row in browser.all("#callback-legs tbody tr")]
        assert [(r[0], r[1], r[2], r[4], r[5]) for r in legs] == [("1", "139****7110", "agent1001", "ANSWER", "是")]
    finally:
        await pause_all(engine, ami, False)


async def test_given_caller_ids_that_are_no_callable_number_then_no_callback_is_offered_dialed_or_left_pending(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    """Each presses the callback key and is told its number cannot be called back, then waits
    on in its place: no request, no stand-in, nothing pending for the number."""
    sent = ["13900000777&Local/110%40ivr-transfers/n", "00900123,Queue%3A%20vip", "00441234567890"]
    seen = Dials(ami)
    await pause_all(engine, ami, True)
    try:
        ticket = await _refused_in_place(phones, ami, tickets, redis, sent)
        # a header naming another call's id: that call's ticket is not touched
        other = (await _refused_in_place(phones, ami, tickets, redis, [f"13900000778,Linkedid%3A%20{ticket.linkedid}"]))
        assert other.linkedid != ticket.linkedid
        again = await tickets.get(ticket.linkedid)
        assert again is not None and again.callback is None
        assert seen.callbacks == []
        seen.assert_nothing_outside(engine, set())
    finally:
        await pause_all(engine, ami, False)


async def test_given_a_sub_center_busy_for_a_caller_that_cannot_be_called_back_then_no_callback_is_offered_only_the_queue(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    """After a failed transfer the offer is "1 or hold: 12345; 2: a callback": a number abroad
    hears no offer and goes straight to the queue; its 2 books nothing."""
    caller = "00447700900123"
    offers: list[dict[str, str]] = []
    ami.on("Newexten", lambda e: offers.append(e) if e.get("CallerIDNum") == caller
           and "subcenter_fallback_offer" in e.get("AppData", "") else None)
    seen = Dials(ami)
    await pause_all(engine, ami, True)
    try:
        queued = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller)
        gateway = await phones.subcenter("tax", caller, "busy")
        sipp, _ = await phones.call("12366", [Key("2", 7000)], hold_ms=3000, caller=caller)
        assert (await asyncio.wait_for(queued, 30))["Queue"] == "q-general"
        assert await sipp.wait(30) == 0, sipp.output()
        assert await gateway.wait(20) == 0, gateway.output()
        ticket = await closed_ticket(tickets, caller, timeout=30)
        assert ticket.disposition == "transfer_failed" and ticket.callback is None
        assert ticket.after_transfer.startswith("queue general")
        assert offers == [] and seen.callbacks == []
    finally:
        await pause_all(engine, ami, False)


async def _refused_in_place(phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any, sent: list[str]) -> Any:
    """Calls from ``sent`` (From users) press the callback key in the general queue; each is
    back in the queue after the refusal. Returns the first one's ticket."""
    raws = [unquote(s) for s in sent]
    numbers = [normalize(r) for r in raws]
    key = phones.state.caller_key.encode()
    joins: dict[str, int] = {n: 0 for n in numbers}

    def joined(event: Any) -> None:
        if event.get("CallerIDNum") in joins:
            joins[event["CallerIDNum"]] += 1

    ami.on("QueueCallerJoin", joined)
    sipp = await phones.calls("12345", sent, PRESSES, hold_ms=8000)
    await until(lambda: all(n >= 2 for n in joins.values()), 40)  # the callback key sent each back to its place
    assert await sipp.wait(30) == 0, sipp.output()
    found = []
    for raw, number in zip(raws, numbers):
        ticket = await closed_ticket(tickets, number, timeout=20)
        assert (ticket.caller, ticket.caller_raw) == (number, raw if raw != number else "")
        assert ticket.callback is None and ticket.disposition == "abandoned_queue"
        assert not await redis.hexists(keyspace.CALLBACKS, ticket.linkedid)  # today: `Queue: vip` waits 24 h
        assert not await redis.exists(keyspace.callback_number(keyspace.caller_digest(number, key)))
        found.append(ticket)
    return found[0]
