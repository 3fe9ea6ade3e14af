"""An agent transfers its call from the desk page (real headless Chromium on the bed's engine
console): talking, it picks 12360 and clicks 转接; the engine blind-transfers the agent's
channel (transfer.ami over the console's one transfer AMI client), the customs sipp gateway
takes the call, the ticket records the transfer (blind, then 12360 ANSWER) and the audit log
the click. A three-party call to a sub-center and a transfer on another seat are refused."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, closed_ticket, for_caller, only_seat, until
from testbed.console import ConsoleSite
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

AGENT = "agent1001"


async def test_the_talking_agent_transfers_to_12360_from_the_desk_and_customs_takes_the_call(
    engine: TestBed, browser: Browser, console: ConsoleSite, phones: Phones, ami: AmiClient, tickets: TicketStore,
) -> None:
    await engine.log_in_agents([AGENT])
    browser.sign_in(console.account("agent", AGENT))
    browser.open(f"/desk/{AGENT}")
    await asyncio.to_thread(browser.wait_for, '#live-status[data-status="live"]', 10)
    assert not browser.find("#transfer-form").is_displayed()  # no call: nothing to transfer
    async with only_seat(engine, ami, AGENT):
        caller = phones.next_caller()
        customs = await phones.subcenter("customs", caller)
        await phones.agent(AGENT, caller)  # answers and talks until the call leaves it
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        await phones.call("12345", [Key("0", 1500)], hold_ms=15_000, caller=caller)
        linkedid = str((await asyncio.wait_for(connected, 40))["Linkedid"])
        number = (await until(lambda: tickets.get(linkedid), 20)).number
        await asyncio.to_thread(browser.wait_for, f'#call[data-state="connected"][data-linkedid="{linkedid}"]', 10)
        assert browser.find("#transfer-form").is_displayed()

        browser.find('#transfer-target option[value="12360"]').click()
        browser.find("#transfer-three-party").click()  # 三方通话 is for the emergency lines only
        browser.find("#transfer-go").click()
        await asyncio.to_thread(browser.wait_text, "#desk-message", "转接失败", 10)
        assert "三方通话仅用于紧急线路（110/119/120/122）" in browser.staff_text("#desk-message")
        browser.find("#transfer-three-party").click()
        other = browser.fetch("/desk/agent1002/transfer", "POST", {"target": "12360"})
        assert other["status"] == 403

        blind = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
        await asyncio.to_thread(browser.wait, lambda d: browser.find("#transfer-go").is_enabled(), 10)
        browser.find("#transfer-go").click()
        await asyncio.to_thread(browser.wait_text, "#desk-message", "已转接至 12360", 20)
        assert number in browser.text("#desk-message")
        assert (await asyncio.wait_for(blind, 20))["Result"] == "Success"
        assert await customs.wait(40) == 0, customs.output()  # the citizen talked to 12360 until hanging up
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "transferred" and ticket.agent == AGENT
    assert [(t.kind, t.number) for t in ticket.transfers][:2] == [("blind", "12360"), ("subcenter", "12360")]
    assert ticket.transfers[1].result == "ANSWER"
    done = [e for e in console.audit() if e.command == "desk transfer" and e.what.get("linkedid") == linkedid]
    assert len(done) == 1 and done[0].user == f"{console.account('agent', AGENT).name}@console"
    assert (done[0].what["target"], done[0].what["ticket"], done[0].what["method"]) == ("12360", number, "blind")
    assert any(e.what.get("three_party") and "error" in e.what for e in console.audit() if e.command == "desk transfer")
