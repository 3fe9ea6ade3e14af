"""Tickets in a real Chromium: search and filter, the call's stages, CSV export, all masked;
a supervisor unmasks one caller with a reason (audited first); an agent sees only its seat's
tickets and is refused another seat's, and any unmasked number (403)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tickets.store import TicketStore
from testbed.browser import Browser
from testbed.console import ConsoleSite, run_sync
from tickets.model import IvrPath, Ticket, TimelineEntry

CALLER_KEY = b"console-test-caller-key"


def at(seconds: float) -> str:
    """A few minutes ago, but today: the console's search starts at today's 00:00 (a run just
    after midnight would otherwise find yesterday's tickets)."""
    now = datetime.now().astimezone()
    start = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0, microsecond=0))
    return (start + timedelta(seconds=seconds)).isoformat()


def answered(linkedid: str, caller: str, line: str, agent: str) -> Ticket:
    t = Ticket(linkedid=linkedid, line=line, caller=caller, received=at(0), request_type="complaint",
               request_type_source="ivr", queue="general", wait_seconds=7.0, agent=agent, disposition="answered",
               ivr=IvrPath(flow="main", nodes=["main/welcome", "main/top"], keys=["3"], route="queue"))
    t.timeline = [TimelineEntry(at(0), "received", line), TimelineEntry(at(4), "queue joined", "general position 1"),
                  TimelineEntry(at(9), "agent rung", agent), TimelineEntry(at(11), "agent connected", f"{agent} after 7.0 s"),
                  TimelineEntry(at(80), "closed", "answered")]
    return t


@pytest.fixture(scope="module")
def tickets(console: ConsoleSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ticket]:
    """Three of today's tickets: agent1001's, agent1002's on 12366, one abandoned in the queue."""
    made = [answered("t.1", "13900000001", "12345", "agent1001"), answered("t.2", "13900000002", "12366", "agent1002"),
            Ticket(linkedid="t.3", line="12345", caller="13900000003", received=at(1), disposition="abandoned_queue")]

    async def write() -> dict[str, Ticket]:
        store = TicketStore(console.redis_url, tmp_path_factory.mktemp("spool"), "test", retention_days=1,
                            caller_key=CALLER_KEY)
        try:
            for t in made:
                await store.write(t, "closed")
            await store.drain()
            found = [await store.get(t.linkedid) for t in made]
            return {t.linkedid: t for t in found if t}
        finally:
            await store.close()

    return run_sync(write)


def test_supervisor_searches_views_the_stages_and_unmasks_with_a_reason(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket]
) -> None:
    supervisor = console.account("supervisor")
    browser.sign_in(supervisor).open("/tickets")
    listed = browser.text("#tickets")
    assert all(t.number in listed for t in tickets.values())
    assert "139****0001" in listed and "13900000001" not in listed
    assert browser.find("#until").get_attribute("placeholder") == f"{date.today()}"  # not before the start's default
    browser.open("/tickets?line=12a&since=2026-12-05&until=2026-12-01")  # told in Mandarin what to type
    assert browser.text("#error-message") == "受理止应晚于受理起。"
    browser.open("/tickets?line=12a")
    assert browser.text("#error-message") == "号码线路只能是数字（如 12345、12366）。"
    browser.open("/tickets")
    browser.fill("#line", "12366")
    browser.submit("#search")
    assert [r.text.split()[0] for r in browser.all("#tickets tbody tr")] == [tickets["t.2"].number]

    browser.open(f"/tickets/{tickets['t.1'].number}")
    assert browser.text("#caller") == "139****0001"
    stages = [r.get_attribute("data-stage") for r in browser.all("#timeline tbody tr")]
    assert stages == ["受理", "IVR", "排队", "座席", "座席", "结束"]
    assert "流程 main" in browser.text("#timeline") and "投诉" in browser.text("#request-type")
    assert "7×24综合座席，排第 1 位" in browser.text("#timeline")  # stored in English, shown in Mandarin
    assert "agent1001，等待 7.0 秒后接通" in browser.text("#timeline") and "已接听" in browser.text("#timeline")
    browser.fill("#reason", "回访投诉人")
    browser.submit("#unmask")
    assert browser.text("#caller") == "13900000001"
    entry = console.audit()[-1]
    assert (entry.user, entry.command, entry.what, entry.callers, entry.reason) == (
        f"{supervisor.name}@console", "console tickets show", {"number": tickets["t.1"].number}, 1, "回访投诉人")

    csv = browser.fetch("/tickets/export.csv?line=12345")
    assert csv["status"] == 200 and csv["text"].lstrip("\ufeff").startswith("number,received,line")
    assert "139****0003" in csv["text"] and "13900000003" not in csv["text"]

    browser.at(console.url).sign_in(console.account("admin")).open("/audit")  # the admin sees that read
    row = [r.text for r in browser.all("#audit tbody tr") if "控制台查看完整号码（单张工单）" in r.text][0]
    assert f"{supervisor.name}@console" in row and "回访投诉人" in row and "13900000001" not in row


def test_an_agent_sees_only_its_seats_tickets_and_never_an_unmasked_number(
    browser: Browser, console: ConsoleSite, tickets: dict[str, Ticket]
) -> None:
    browser.sign_in(console.account("agent", "agent1001")).open("/tickets")
    assert [r.text.split()[0] for r in browser.all("#tickets tbody tr")] == [tickets["t.1"].number]
    assert not browser.all("#export-unmasked")
    browser.open("/tickets?seat=agent1002")  # another agent's page
    assert browser.text("#error-title") == "无权访问"
    assert browser.fetch("/tickets?seat=agent1002")["status"] == 403
    browser.open(f"/tickets/{tickets['t.2'].number}")
    assert browser.text("#error-title") == "无权访问"
    browser.open(f"/tickets/{tickets['t.1'].number}")
    assert browser.text("#caller") == "139****0001" and not browser.all("#unmask-form")
    unmask = browser.fetch(f"/tickets/{tickets['t.1'].number}/unmask", "POST", {"reason": "我想看"})
    assert unmask["status"] == 403 and "13900000001" not in unmask["text"]
    export = browser.fetch("/tickets/export.csv", "POST", {"reason": "我想看"})
    assert export["status"] == 403
    assert not [e for e in console.audit() if e.reason == "我想看"]


def test_an_unmasked_read_without_a_reason_is_refused(browser: Browser, console: ConsoleSite,
                                                      tickets: dict[str, Ticket]) -> None:
    browser.sign_in(console.account("admin")).open("/tickets")
    refused = browser.fetch(f"/tickets/{tickets['t.1'].number}/unmask", "POST", {"reason": "  "})
    assert refused["status"] == 400 and "13900000001" not in refused["text"]
