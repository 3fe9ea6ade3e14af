"""The live console on the bed's engine, in real headless Chromium: an agent signs in to its desk;
a sipp call reaches the agent's queue and the ticket pops on the desk while the agent's phone is
still ringing (it answers seconds later); the agent types the call on the page and it is on the
ticket (Redis, through the ticket store) and stays there when the call closes; the supervisor's
wallboard counts the call waiting and then answered, each within its wait budget after the AMI
event. The agent pauses and unpauses from the page; another agent's desk is refused (403).

With ``IVR_SCREENSHOTS=DIR`` the wallboard and the desk are saved there at the moment of the pop
(the README's screenshots: ``IVR_SCREENSHOTS=docs/img``)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import asterisk_queue, config_queue
from queues.model import memberships
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import Browser, start_chromium
from testbed.calls import Phones, closed_ticket, for_caller, until
from testbed.console import ConsoleSite
from testbed.sipp import keys

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

AGENT = "agent1001"
COMPLAIN = keys("2", first_ms=500)  # 12345's menu: 2 投诉 (the IVR labels the request), then the general queue
RING_MS = 6000  # the agent's phone rings this long before it answers: the pop must come first
WAITING_BUDGET = 1.0  # s after QueueCallerJoin for the board to show the caller waiting
# s after AgentConnect for the board to count the answer: the engine reads AMI events in 0.2 s
# batches (ami.event_batch_ms) and the visit's count reaches Redis with the ticket writer's group
# commit (redis.record_flush_ms, 0.5 s); then a second like the rest, less what those two took
ANSWERED_BUDGET = 1.5


@pytest.fixture(scope="module")
def second_chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """The supervisor's browser, beside the agent's (its own profile: its own session)."""
    browser = Browser(start_chromium(tmp_path_factory.mktemp("chromium-supervisor")))
    yield browser
    browser.driver.quit()


@pytest.fixture
def supervisor(second_chromium: Browser, console: ConsoleSite) -> Browser:
    return second_chromium.at(console.url)


@pytest.fixture
async def only_agent_rung(engine: TestBed, ami: AmiClient) -> AsyncIterator[None]:
    """The other general seats of the lowest penalty paused: the queue rings AGENT first."""
    others = [a for a in ("agent1002", "agent1003") if a in engine.settings.agents]

    async def pause(paused: bool) -> None:
        for agent in others:
            await ami.action({"Action": "QueuePause", "Queue": asterisk_queue("general"), "Interface": f"PJSIP/{agent}",
                              "Paused": "true" if paused else "false", "Reason": "test_desk"})

    await engine.log_in_agents([AGENT])
    await pause(True)
    yield
    await pause(False)


def cell(board: Browser, queue: str, field: str) -> str:
    """A wallboard cell's text, read in one go (the board rebuilds its rows on every event)."""
    css = f'#queues tr[data-queue="{queue}"] td[data-field="{field}"]'
    return str(board.driver.execute_script("var c = document.querySelector(arguments[0]); return c ? c.textContent : '-1';", css))


async def in_thread(fn: Any, *args: Any) -> Any:
    """Selenium blocks: its waits run in a thread, so AMI events keep arriving meanwhile."""
    return await asyncio.to_thread(fn, *args)


async def page_shows(page: Browser, condition: Any, budget: float) -> float:
    """Wait (polling every 20 ms) until the page shows ``condition``; the seconds it took."""
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    await in_thread(WebDriverWait(page.driver, budget, poll_frequency=0.02).until, condition)
    return time.monotonic() - started


async def open_desk(browser: Browser, console: ConsoleSite) -> None:
    browser.sign_in(console.account("agent", AGENT))
    browser.open(f"/desk/{AGENT}")
    await in_thread(browser.wait_for, '#live-status[data-status="live"]', 10)


def screenshot(browser: Browser, name: str) -> None:
    target = os.environ.get("IVR_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        size = browser.driver.get_window_size()
        browser.driver.set_window_size(1400, 1000)  # the whole board, as on a supervisor's screen
        try:
            browser.driver.save_screenshot(str(Path(target) / name))
        finally:
            browser.driver.set_window_size(size["width"], size["height"])


async def test_the_ticket_pops_before_the_agent_answers_the_agent_types_it_and_the_wallboard_counts_it(
    engine: TestBed, browser: Browser, supervisor: Browser, console: ConsoleSite, phones: Phones, ami: AmiClient,
    tickets: TicketStore, only_agent_rung: None,
) -> None:
    await open_desk(browser, console)
    await in_thread(browser.wait_for, '#seat-state[data-state="available"]', 20)  # (an earlier call's wrap-up ends)
    supervisor.sign_in(console.account("supervisor"))
    supervisor.open("/wallboard")
    await in_thread(supervisor.wait_for, '#live-status[data-status="live"]', 10)
    await in_thread(supervisor.wait_for, '#queues tr[data-queue="general"]', 10)
    answered_before = int(cell(supervisor, "general", "today-answered"))

    caller = phones.next_caller()
    phone = await phones.agent(AGENT, caller, mode="hangup", ring_ms=RING_MS, talk_ms=3000)
    joined = ami.wait_for("QueueCallerJoin", for_caller(caller))
    called = ami.wait_for("AgentCalled", for_caller(caller))
    connected = ami.wait_for("AgentConnect", for_caller(caller))
    sipp, _ = await phones.call("12345", COMPLAIN, hold_ms=30_000, caller=caller)

    await asyncio.wait_for(joined, 30)
    waiting_shown = await page_shows(supervisor, lambda d: int(cell(supervisor, "general", "waiting")) >= 1,
                                      WAITING_BUDGET)

    offer = await asyncio.wait_for(called, 20)
    assert offer["Interface"] == f"PJSIP/{AGENT}"
    popped = await page_shows(browser, lambda d: browser.all('#call[data-state="offered"]'), 5)
    popped_at = time.time()
    assert not connected.done(), "the agent's phone answered before the ticket popped"
    linkedid = browser.find("#call").get_attribute("data-linkedid")
    [ticket] = await tickets.recent_for_caller(caller, 0)
    assert ticket.linkedid == linkedid and not ticket.answered
    assert browser.text("#stub-line").startswith("12345")
    assert browser.text("#stub-caller") == f"{caller[:3]}****{caller[-4:]}"  # masked for an agent
    assert caller not in browser.text("#desk")
    assert "main/menu" in browser.text("#stub-ivr") and "投诉" in browser.text("#stub-request")
    assert browser.find("#type-complaint").is_selected()  # the IVR's choice, for the agent to confirm or change
    screenshot(browser, "desk.png")
    screenshot(supervisor, "wallboard.png")

    # the agent types the call (while it still rings) and it is on the ticket
    browser.find("#type-report").click()
    department = browser.all("#ticket-department option")[1].get_attribute("value")
    browser.find(f'#ticket-department option[value="{department}"]').click()
    browser.fill("#ticket-notes", "反映小区噪音扰民，需回访")
    browser.find("#ticket-save").click()
    await in_thread(browser.wait_text, "#desk-message", "已保存", 10)
    stored = await tickets.get(linkedid)
    assert stored is not None
    assert (stored.request_type, stored.request_type_source, stored.department) == ("report", "agent", department)

    answer = await asyncio.wait_for(connected, 20)
    counted = await page_shows(
        supervisor, lambda d: int(cell(supervisor, "general", "today-answered")) == answered_before + 1, ANSWERED_BUDGET)
    assert popped_at < float(answer["Timestamp"])  # Asterisk's own time of the answer, after the pop
    print(f"\nconsole live: desk pop {popped:.3f} s after AgentCalled (answered {RING_MS / 1000:.0f} s later); "
          f"wallboard waiting {waiting_shown:.3f} s after QueueCallerJoin, answered {counted:.3f} s "
          f"after AgentConnect (as the test's AMI session received them)")
    await in_thread(browser.wait_for, '#call[data-state="connected"]', 5)

    assert await phone.wait(30) == 0, phone.output()  # the agent hung up: its wrap-up begins
    # 后处理 while the queue's wrap-up lasts (app_queue's, 5 s: the member has none of its own),
    # then the seat is free again on the page, though app_queue says nothing when a wrap-up ends
    wrapup = engine.settings.queues["general"].wrapup
    await in_thread(browser.wait_for, '#call[data-state="ended"]', 5)
    await in_thread(browser.wait_for, '#seat-state[data-state="wrapup"]', wrapup)
    assert browser.text("#call-state-label") == "通话结束（后处理）"
    await in_thread(browser.wait_for, '#seat-state[data-state="available"]', wrapup + 3)
    assert browser.text("#call-state-label") == "通话结束"
    await sipp.wait(30)
    closed = await closed_ticket(tickets, caller)  # the engine's closing write keeps what the agent set
    assert (closed.request_type, closed.request_type_source) == ("report", "agent")
    assert (closed.department, closed.notes) == (department, "反映小区噪音扰民，需回访")
    assert closed.disposition == "answered" and closed.agent == AGENT
    await in_thread(browser.wait_for, '#call[data-state="ended"]', 10)
    audited = [e for e in console.audit() if e.command == "desk ticket update"]
    assert any(e.what.get("ticket") == closed.number for e in audited)


async def test_an_agent_pauses_and_unpauses_from_the_desk(
    engine: TestBed, browser: Browser, console: ConsoleSite, ami: AmiClient, only_agent_rung: None,
) -> None:
    await open_desk(browser, console)
    browser.find('#pause-reason option[value="2"]').click()  # 用餐
    browser.find("#seat-pause").click()
    await in_thread(browser.wait_for, '#seat-state[data-state="paused"]', 10)
    assert "已暂停" in browser.text("#desk-message")
    assert "用餐" in browser.text("#seat-reason")

    async def paused_in_asterisk(expected: str) -> bool:
        listing = await ami.action({"Action": "QueueStatus", "Queue": asterisk_queue("general")}, as_list=True)
        rows = [e for e in listing if e.get("Event") == "QueueMember" and e.get("Name") == AGENT]
        return bool(rows) and rows[0].get("Paused") == expected

    await until(lambda: paused_in_asterisk("1"), 10)
    browser.find("#seat-unpause").click()
    await in_thread(browser.wait, lambda d: browser.find("#seat-state").get_attribute("data-state") != "paused", 10)
    await until(lambda: paused_in_asterisk("0"), 10)


async def members_are(ami: AmiClient, agent: str, expected: dict[str, int]) -> bool:
    """Whether ``agent`` is a member of just the ``expected`` queues in Asterisk now
    (``QueueStatus``), with those penalties."""
    listing = await ami.action({"Action": "QueueStatus"}, as_list=True)
    return expected == {config_queue(e["Queue"]): int(e["Penalty"]) for e in listing
                        if e.get("Event") == "QueueMember" and e.get("Location") == f"PJSIP/{agent}"}


async def test_an_agent_signs_out_of_every_queue_and_back_in_with_its_penalties_from_the_desk(
    engine: TestBed, browser: Browser, console: ConsoleSite, ami: AmiClient, full_shift: None,
) -> None:
    """签出 / 签入 on the desk of an expert seat (its legal queue first, the general one at penalty
    10): Asterisk's queues lose it and get it back as configured; the page and the audit log say so."""
    expert = "expert2002"
    serves = memberships(engine.settings.agents[expert], engine.settings.queues)
    assert len(serves) == 2 and len(set(serves.values())) == 2
    await engine.log_in_agents([expert])
    await until(lambda: members_are(ami, expert, serves), 10)
    browser.sign_in(console.account("agent", expert))
    browser.open(f"/desk/{expert}")
    await in_thread(browser.wait_for, '#live-status[data-status="live"]', 10)
    await in_thread(browser.wait_for, '#seat-state[data-state="available"]', 10)

    browser.find("#seat-logout").click()
    await in_thread(browser.wait_for, '#seat-state[data-state="logged_out"]', 10)
    assert browser.text("#seat-state") == "未签入" and browser.text("#desk-message") == "已签出"
    await until(lambda: members_are(ami, expert, {}), 10)

    browser.find("#seat-login").click()
    await in_thread(browser.wait_for, '#seat-state[data-state="available"]', 10)
    titles = [engine.settings.queues[q].title for q in serves]
    assert browser.text("#desk-message").startswith("已签入：") and all(t in browser.text("#desk-message") for t in titles)
    await until(lambda: members_are(ami, expert, serves), 10)
    done = [(e.user, e.what) for e in console.audit() if e.command == "desk seat" and e.what.get("agent") == expert]
    assert [what["action"] for _, what in done[-2:]] == ["logout", "login"]
    assert {user for user, _ in done[-2:]} == {f"{console.account('agent', expert).name}@console"}


async def test_an_agent_cannot_open_another_agents_desk(engine: TestBed, browser: Browser, console: ConsoleSite) -> None:
    await open_desk(browser, console)
    browser.open("/desk/agent1002")
    assert "无权访问" in browser.text()
    cookies = {"ivr_session": browser.driver.get_cookie("ivr_session")["value"]}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        for path in ("/desk/agent1002", "/desk/agent1002/events", "/desk/agent1002/state", "/wallboard"):
            async with http.get(console.url + path) as response:
                assert response.status == 403, path
        async with http.get(console.url + f"/desk/{AGENT}/state") as response:
            assert response.status == 200 and (await response.json())["agent"] == AGENT
