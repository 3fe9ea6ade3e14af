"""A real call's ticket in the console: the seat that answered sees it on its tickets page with
the call's stages (IVR → queue → agent), the caller masked; another seat's agent is refused.
An admin reads the same ticket, before and after unmasking, its audit line and the simulator, all
in Mandarin (testbed/wording.py): the stored English values are translated where shown. So are the
集群 page and the flows page with the running version's warnings (next year's holiday calendar)."""

from __future__ import annotations

import pytest

import re
from datetime import datetime

from ivr.core.calendar import load_calendar
from ivr.core.masking import mask_number
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, closed_ticket
from testbed.console import ConsoleSite
from testbed.sipp import keys
from testbed.wording import english_words

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def test_the_answering_seat_sees_the_calls_ticket_and_another_seat_does_not(
    engine: TestBed, phones: Phones, tickets: TicketStore, browser: Browser, console: ConsoleSite,
) -> None:
    caller = phones.next_caller()
    await phones.seats("general", caller, mode="hangup", talk_ms=1000)
    sipp, _ = await phones.call("12345", keys("1"), hold_ms=8000, caller=caller)  # hangs up in the survey
    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert await sipp.wait(30) == 0, sipp.output()
    assert ticket.disposition == "answered" and ticket.agent

    browser.sign_in(console.account("agent", ticket.agent)).open("/tickets")
    assert ticket.number in browser.text("#tickets") and caller not in browser.text("#tickets")
    browser.open(f"/tickets/{ticket.number}")
    assert browser.text("#caller") == mask_number(caller)
    stages = [r.get_attribute("data-stage") for r in browser.all("#timeline tbody tr")]
    assert stages[:2] == ["受理", "IVR"] and "排队" in stages and "座席" in stages and stages[-1] == "结束"
    assert stages.index("排队") < stages.index("座席")
    assert "main/greeting → main/menu" in browser.text("#timeline")

    other = next(name for name in engine.settings.agents if name != ticket.agent)
    browser.at(console.url).sign_in(console.account("agent", other)).open(f"/tickets/{ticket.number}")
    assert browser.text("#error-title") == "无权访问"
    assert browser.fetch(f"/tickets/{ticket.number}")["status"] == 403

    admin = console.account("admin")
    names = [admin.name, ticket.ivr.flow, *engine.settings.agents]
    browser.at(console.url).sign_in(admin).open(f"/tickets/{ticket.number}")
    masked = browser.text("main")
    assert engine.settings.queues["general"].title in browser.text("#queue")
    browser.fill("#reason", "回访核实诉求")
    unmasked = browser.submit("#unmask").text("main")
    assert caller in browser.text("#caller")
    audit = browser.open(f"/audit?q={ticket.number}").text("#audit")
    assert "回访核实诉求" in audit
    simulated = browser.open("/flows/simulate?number=12345&keys=1").text("#simulation")
    cluster = browser.open("/cluster").staff_text("main")
    assert "节点租约" in cluster and browser.all('#cluster-nodes tr[data-node="ivr12345"]')
    holders = [part for td in browser.all("#cluster-nodes td:last-child")  # engines (host:pid): named by the host
               for part in re.split(r"[\s:]+", td.text)]
    year = datetime.now().year  # the check warns of each of this year and the next without official holidays
    warned = [re.findall(r"\d{4}", w)[0] for y in (year, year + 1) if (w := load_calendar().coverage_warning(y))]
    assert warned, "chinesecalendar covers next year: the engine has no warning to show (see ivr/core/calendar.py)"
    shown = [li.text for li in browser.open("/flows").all("#live-warnings li")]
    assert len(shown) == len(warned) and all(t.startswith(f"警告：{y} 年节假日日历") for t, y in zip(shown, warned)), shown
    checked = browser.staff_text("#live-warnings")
    found = {page: english_words(text, [*names, *holders, "chinesecalendar"]) for page, text in
             (("ticket", masked), ("unmasked", unmasked), ("audit", audit), ("simulator", simulated),
              ("cluster", cluster), ("warnings", checked))}
    assert not any(found.values()), found
