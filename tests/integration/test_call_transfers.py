"""Transfers of calls in progress on the real Asterisk: an agent's attended transfer from the
softphone (features.conf atxfer), the engine's transfer (``ivr transfer``, transfer/ami.py), a
three-party bridge with 110 (ConfBridge), and a transfer to another platform carrying the
ticket number in a SIP header (the bed dials itself on its own SIP port through its
``province`` trunk, so the second leg arrives as another platform's call)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any, AsyncIterator

import pytest
from pydantic import SecretStr

from ivr.ami.client import AmiClient
from ivr.config import Settings
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, for_caller, only_seat, run_ivr, trunk_state, until
from testbed.console import ConsoleSite, board_until, http_client, metric, sign_in_http
from testbed.sipp import Key, keys
from transfer.ami import transfer_call
from tickets.model import Ticket

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


def transfer_settings(bed: TestBed) -> Settings:
    """The bed's settings as the console holds them: with the transfer user's secret."""
    assert bed.state
    s = bed.settings
    return s.model_copy(update={"ami": s.ami.model_copy(update={"transfer_secret": SecretStr(bed.state.transfer_ami_secret)})})


async def talking(ami: AmiClient, phones: Phones, caller: str, hold_ms: int = 30_000) -> str:
    """The citizen ``caller`` dials 12345, keys 0 and is answered by a seat; the call's linkedid."""
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    await phones.call("12345", [Key("0", 1500)], hold_ms=hold_ms, caller=caller)
    return str((await asyncio.wait_for(connected, 40))["Linkedid"])


@contextlib.asynccontextmanager
async def one_seat(bed: TestBed, ami: AmiClient, phones: Phones, agent: str) -> AsyncIterator[str]:
    """A fresh citizen number for the block, whose call only ``agent`` of the general queue takes."""
    async with only_seat(bed, ami, agent):
        yield phones.next_caller()


async def open_ticket(tickets: TicketStore, linkedid: str) -> Ticket:
    """The call's ticket once it is stored (opened, with its number)."""
    return await until(lambda: tickets.get(linkedid), 20)


async def test_given_an_agent_consults_customs_then_completes_the_attended_transfer_then_customs_has_the_caller(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    async with one_seat(engine, ami, phones, "agent1001") as caller:
        # the consultation shows the citizen's number, or (a race with the agent's bridge) 12345
        customs = await phones.subcenter("customs", caller, also=("12345", "transfer"))
        # *2 (atxfer), the number, a moment of consultation, then the agent hangs up: complete
        seat = await phones.agent("agent1001", caller, mode="keys", talk_ms=4000,
                                  presses=[Key("*", 1500), *keys("212360", first_ms=300, gap_ms=400)])
        transferred = ami.wait_for("AttendedTransfer", lambda e: e.get("TransfereeCallerIDNum") == caller)
        sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=20_000, caller=caller)
        event = await asyncio.wait_for(transferred, 40)
        assert event["Result"] == "Success", event
        assert await seat.wait(20) == 0, seat.output()
        assert await customs.wait(40) == 0, customs.output()  # the citizen talked to 12360 until hanging up
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "transferred" and ticket.agent == "agent1001"
    attended = next(t for t in ticket.transfers if t.kind == "attended")
    assert attended.number == "12360" and attended.result == "Success"
    consult = next(t for t in ticket.transfers if t.kind == "subcenter")
    assert (consult.number, consult.target, consult.result) == ("12360", "customs", "ANSWER")


async def test_given_a_call_with_an_agent_when_the_engine_transfers_it_to_12360_then_customs_takes_it(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    assert engine.state
    async with one_seat(engine, ami, phones, "agent1001") as caller:
        customs = await phones.subcenter("customs", caller)
        await phones.agent("agent1001", caller)  # answers and waits
        blind = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
        linkedid = await talking(ami, phones, caller, hold_ms=15_000)
        number = (await open_ticket(tickets, linkedid)).number
        code, out = await run_ivr(engine.state, "transfer", number, "12360", "--json")
        assert code == 0, out
        result = json.loads(out.strip().splitlines()[-1])
        assert (result["linkedid"], result["ticket"], result["method"], result["agent"], result["trunk"]) == \
            (linkedid, number, "blind", "agent1001", "customs")
        assert (await asyncio.wait_for(blind, 20))["Result"] == "Success"
        assert await customs.wait(40) == 0, customs.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "transferred"
    assert [(t.kind, t.number) for t in ticket.transfers][:2] == [("blind", "12360"), ("subcenter", "12360")]
    assert ticket.transfers[1].result == "ANSWER"


async def test_given_an_unknown_target_then_the_engine_refuses_and_names_the_known_ones(engine: TestBed) -> None:
    assert engine.state
    code, out = await run_ivr(engine.state, "transfer", "agent1001", "99999")
    assert code == 2 and "unknown transfer target '99999'" in out and "12360" in out and "province" in out


async def test_given_unclear_responsibility_then_caller_agent_and_110_meet_in_a_three_party_bridge(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    async with one_seat(engine, ami, phones, "agent1001") as caller:
        police = await phones.subcenter("emergency", caller)
        await phones.agent("agent1001", caller)
        linkedid = await talking(ami, phones, caller, hold_ms=20_000)
        await open_ticket(tickets, linkedid)
        joined: list[dict[str, Any]] = []
        ami.on("ConfbridgeJoin", lambda e: joined.append(dict(e)) if e.get("Conference") == f"ivr-{linkedid}" else None)
        result = await transfer_call(caller_leg := linkedid, "110", settings=transfer_settings(engine), three_party=True)
        assert (result.method, result.three_party, result.number, result.trunk) == ("bridge", True, "110", "emergency")
        await until(lambda: len(joined) >= 3, 30)
        assert {e["Channel"].split("/")[1].rsplit("-", 1)[0] for e in joined} == {"pstn", "agent1001", "emergency"}
        assert any(e["Uniqueid"] == caller_leg for e in joined)  # the citizen's own channel
        assert await police.wait(40) == 0, police.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "emergency_linked" and ticket.emergency_linked
    link = next(t for t in ticket.transfers if t.kind == "emergency")
    assert (link.number, link.target, link.result, link.three_party) == ("110", "emergency", "ANSWER", True)
    assert link.at and link.then == "three-party bridge"


async def test_given_a_transfer_to_the_provincial_platform_then_its_ticket_links_ours(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    # another seat than the three-party test's, which is in wrap-up (5 s) when this call queues,
    # and the position and callback announcements would outlast the caller's hold
    async with one_seat(engine, ami, phones, "agent1002") as caller:
        await phones.agent("agent1002", caller)
        linkedid = await talking(ami, phones, caller, hold_ms=15_000)
        ours = await open_ticket(tickets, linkedid)
        arrived = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrPlatform" and e.get("Linkedid") != linkedid)
        result = await transfer_call("agent1002", "province", settings=transfer_settings(engine))
        assert (result.kind, result.ticket, result.linkedid) == ("platform", ours.number, linkedid)
        event = await asyncio.wait_for(arrived, 30)
        assert (event["Platform"], event["Ticket"]) == ("province", ours.number)
        theirs = await until(lambda: tickets.get(event["Linkedid"]), 20)
        assert theirs.number != ours.number
    await until(lambda: _closed(tickets, linkedid, event["Linkedid"]), 60)
    sent, received = await tickets.get(linkedid), await tickets.get(event["Linkedid"])
    assert sent and received
    assert [(t.kind, t.target, t.number, t.result) for t in sent.transfers if t.kind == "platform"] == \
        [("platform", "province", "12345", "ANSWER")]
    assert sent.disposition == "transferred"
    assert (received.from_platform, received.from_ticket, received.line) == ("province", ours.number, "12345")


async def _closed(tickets: TicketStore, *linkedids: str) -> bool:
    found = [await tickets.get(x) for x in linkedids]
    return all(t is not None and t.disposition for t in found)


async def test_a_trunk_whose_gateway_stops_answering_is_shown_down_on_the_wallboard_and_in_metrics_and_up_again(
    engine: TestBed, phones: Phones, console: ConsoleSite,
) -> None:
    """Issue 22 item 8: the node's follower hears the trunks' OPTIONS probes (ContactStatus) and
    the wallboard (JSON and page) and ``/metrics`` say which gateway answers, per node."""
    assert engine.state
    node = f"127.0.0.1:{engine.state.ami_port}"
    sample = f'ivr_trunk_up{{node="{node}",trunk="tax"}}'

    def tax(up: bool) -> Any:
        return lambda board: any(r["trunk"] == "tax" and r["node"] == node and r["up"] is up for r in board["trunks"])

    await trunk_state(engine, "tax", reachable=False)  # nothing listens on its port
    await board_until(console, tax(False), 15)
    await until(lambda: metric(console, sample) == 0, 15)
    page = await wallboard_page(console)
    assert re.search(r'data-trunk="tax" data-node="[^"]+" data-up="0">\s*<td data-field="title">12366纳税服务热线</td>'
                     r'.*?不可达', page, re.S), page

    gateway = await phones.subcenter("tax", phones.next_caller())  # it answers OPTIONS now
    await board_until(console, tax(True), 15)
    await until(lambda: metric(console, sample) == 1, 15)
    assert 'data-trunk="tax" data-node="' + node + '" data-up="1"' in await wallboard_page(console)
    await gateway.stop()
    await board_until(console, tax(False), 15)  # and down again by itself


async def wallboard_page(console: ConsoleSite) -> str:
    async with http_client() as http:
        await sign_in_http(http, console, console.account("supervisor"))
        async with http.get(console.url + "/wallboard") as reply:
            assert reply.status == 200
            return await reply.text()
