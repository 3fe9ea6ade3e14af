"""The desk page's WebRTC phone (issue 23), in real headless Chromium with a fake microphone
saying FAKE_MIC_HZ: the agent signs in and opens the desk, the page registers the seat's phone
over Asterisk's WebSocket (Asterisk's contacts show it, over ws) and, registered, logs the seat in
to its queues; a sipp citizen's call rings the page with the ticket already shown, the agent
answers in the page and both hear each other: the citizen's RTP carries the agent's tone, the
page's getStats() counts the citizen's audio in and its own out (on the microphone the agent chose
before the call, kept in localStorage); the agent keys a digit (Asterisk
sees it), mutes (the citizen stops hearing the agent) and unmutes, holds (a re-INVITE: Asterisk's
Hold, the citizen stops hearing the agent) and resumes, the call timer running; then, from the panel, it
consults 12360 (咨询转接: the customs gateway rings and answers while the citizen waits) and 挂断
completes the transfer: customs has the citizen and the ticket records the agent and the
transfer. This module's seat becomes a web
phone on the session's bed (config reloaded, as a deployment would), not a bed of its own."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

from ivr.ami.client import AmiClient
from queues.agents import STATE_LABELS
from queues.seat_control import SeatControl
from queues.wish_store import SeatWishes
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import FAKE_MIC_HZ, Browser, start_chromium
from testbed.calls import Phones, closed_ticket, for_caller, hang_up_all, only_seat, until
from testbed.console import ConsoleSite
from testbed.rtp import ToneLeg, goertzel_share
from testbed.sipp import Key

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

AGENT = "agent1003"
JSSIP = Path(__file__).resolve().parents[2] / "console" / "static" / "jssip.min.js"
CITIZEN_HZ = 600
PHONES = "phones:\n  qualify: {every: 15, timeout: 3}\n"
QUIET = 0.1
HEARD = 0.5  # share of a second's energy at one frequency: the tone is there (testbed/rtp.py)

FAKE_MIC_2 = "Fake Audio Input 2"
SENDING = "return window.ivrDeskPhone.connection().getSenders().map(s => s.track && s.track.label).join()"
STATS = """
const done = arguments[arguments.length - 1];
const pc = window.ivrDeskPhone && window.ivrDeskPhone.connection();
if (!pc) { done(null); return; }
pc.getStats().then(report => {
  const out = {};
  report.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { out.packetsReceived = s.packetsReceived; out.energy = s.totalAudioEnergy; }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') { out.packetsSent = s.packetsSent; }
    if (s.type === 'codec') { (out.codecs = out.codecs || []).push(s.mimeType); }
  });
  done(out);
});
"""


@pytest.fixture(scope="module")
def web_seat(bed: TestBed, config_dir: Path) -> Iterator[None]:
    """``AGENT``'s phone is the desk page's for this module, on the bed's own WebSocket port
    (edited in the session's private config/, then Asterisk's files and the engine reloaded, as a
    deployment does); a sipp's again afterwards, the seat logged in as the session expects."""
    assert bed.state and bed.state.http_port
    assert JSSIP.is_file(), f"{JSSIP} is not built: ./run's setup builds it (by hand: cd console && npm ci " \
        "--ignore-scripts && npm run build)"
    if not bed.state.engine_pid:  # as the ``engine`` fixture: a previous module may have stopped it
        bed.start_engine()
    path = config_dir / "queues.yaml"
    original = path.read_text(encoding="utf-8")
    seat = next(line for line in original.splitlines() if line.strip().startswith(f"{AGENT}:"))
    port = bed.state.http_port
    assert seat.rstrip().endswith("}") and PHONES in original
    path.write_text(original.replace(seat, seat.rstrip()[:-1] + ", phone: web}").replace(
        PHONES, PHONES + f'  web: {{listen: "127.0.0.1:{port}", url: "ws://127.0.0.1:{port}/ws"}}\n'), encoding="utf-8")
    try:
        asyncio.run(reload_all(bed))
        yield
    finally:
        path.write_text(original, encoding="utf-8")
        asyncio.run(reload_all(bed))
        asyncio.run(log_in_everywhere(bed))


async def log_in_everywhere(bed: TestBed) -> None:
    """The seat logged in again as its desk would: with the wish every node applies. The tests
    logged it out through the desk; a wish left at "logout" takes the seat out of its queues at
    the engine's next reconcile (a later module's restart), whoever logged it in on the node."""
    client, wishes = bed.seats_ami(), SeatWishes(bed.settings.redis)
    try:
        await client.connect()
        await SeatControl(client, bed.settings, wishes).login(AGENT)
    finally:
        client.close()
        await wishes.close()


async def reload_all(bed: TestBed) -> None:
    """Asterisk's files rendered and reloaded, then the engine's config (SIGHUP, as ``ivr reload``)."""
    assert bed.state and bed.state.engine_pid
    await bed.apply_config()
    log = bed.engine_log()
    before = log.read_text(encoding="utf-8", errors="replace").count("reloaded config:")
    os.kill(bed.state.engine_pid, signal.SIGHUP)
    await until(lambda: log.read_text(encoding="utf-8", errors="replace").count("reloaded config:") > before, 20)


async def stats(browser: Browser) -> dict[str, Any]:
    return dict(await asyncio.to_thread(browser.driver.execute_async_script, STATS) or {})


async def test_the_desk_page_phone_registers_logs_the_seat_in_rings_with_the_ticket_answers_and_talks(
    engine: TestBed, browser: Browser, console: ConsoleSite, phones: Phones, ami: AmiClient, tickets: TicketStore,
    web_seat: None,
) -> None:
    assert engine.state
    ws = f"ws://127.0.0.1:{engine.state.http_port}/ws"
    browser.sign_in(console.account("agent", AGENT))
    assert browser.fetch(f"/desk/{AGENT}/seat", "POST", {"action": "logout"})["status"] == 200
    page = await fetch_page(browser, f"/desk/{AGENT}")
    assert f"connect-src 'self' {ws}" in page["csp"] and engine.state.agent_secrets[AGENT] not in page["text"]
    browser.open(f"/desk/{AGENT}")
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 20)
    assert browser.fetch("/desk/agent1001/phone", "POST")["status"] == 403  # another seat's account
    contacts = await ami.command(f"pjsip show aor {AGENT}")
    assert f"{AGENT}/sip:" in contacts and "transport=ws" in contacts and " Avail " in contacts, contacts
    await asyncio.to_thread(browser.wait_text, "#desk-message", "已签入", 10)  # registered, then logged in
    # the microphone for the next call: Chromium's fake devices are three (default, 1, 2)
    await asyncio.to_thread(browser.wait_for, "#phone-mic-choice:not([hidden])", 10)
    browser.find(f'#phone-mic option:nth-child({len(browser.driver.find_elements("css selector", "#phone-mic option"))})').click()
    chosen, label = browser.find("#phone-mic").get_attribute("value"), browser.text("#phone-mic option:checked")
    assert label == FAKE_MIC_2 and browser.driver.execute_script("return localStorage.getItem('ivr.phone.microphone')") == chosen

    async with only_seat(engine, ami, AGENT):
        citizen = await ToneLeg("citizen", CITIZEN_HZ, phones.free_port()).start()
        try:
            caller = phones.next_caller()
            # the consultation shows the citizen's number, or (a race with the agent's bridge) 12345
            customs = await phones.subcenter("customs", caller, also=("12345", "transfer"))
            connected = ami.wait_for("AgentConnect", for_caller(caller))
            sipp, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=45_000, caller=caller,
                                        announce_media=citizen.port)
            await asyncio.to_thread(browser.wait_for, '#phone[data-state="ringing"]', 30)
            assert browser.find('#call[data-state="offered"]') and browser.text("#stub-number").startswith("工单 ")
            browser.find("#phone-answer").click()
            up = await asyncio.wait_for(connected, 15)
            linkedid = str(up["Linkedid"])
            await asyncio.to_thread(browser.wait_for, '#phone[data-state="talking"]', 10)
            assert browser.driver.execute_script(SENDING) == FAKE_MIC_2  # the call took the chosen microphone
            await asyncio.to_thread(browser.wait_for, f'#call[data-state="connected"][data-linkedid="{linkedid}"]', 10)

            assert await citizen.level(FAKE_MIC_HZ, citizen.mark(), 1.0) > HEARD  # the agent's voice reached the citizen
            first = await until(lambda: _flowing(browser), 10)
            assert first["packetsSent"] > 0 and first["packetsReceived"] > 0, first
            # the citizen's A-law end to end: the page took the offer's codec, Asterisk transcodes nothing
            assert "audio/PCMA" in first["codecs"] and "audio/PCMU" not in first["codecs"], first
            agent_leg = await ami.command(f"core show channel {up['DestChannel']}")
            assert "ReadTranscode: No" in agent_leg and "WriteTranscode: No" in agent_leg, agent_leg
            later = await until(lambda: _more(browser, first), 10)
            assert later["energy"] > first["energy"], (first, later)  # the citizen's tone, heard in the page

            keyed = ami.wait_for("DTMFEnd", lambda e: e.get("Digit") == "5" and of_agent(e))
            browser.find('#phone-keys button[data-key="5"]').click()
            await asyncio.wait_for(keyed, 10)  # the agent's key reached Asterisk (RFC 4733)
            browser.find("#phone-mute").click()
            await until(lambda: hears(citizen, below=QUIET), 10)  # muted: the citizen no longer hears the agent
            browser.find("#phone-mute").click()
            await until(lambda: hears(citizen, above=HEARD), 10)
            talked = browser.text("#phone-timer")

            held, resumed = ami.wait_for("Hold", of_agent), ami.wait_for("Unhold", of_agent)
            browser.find("#phone-hold").click()  # a re-INVITE: Asterisk holds the agent, music to the citizen
            await asyncio.wait_for(held, 10)
            await until(lambda: hears(citizen, below=QUIET), 10)  # held: the agent's voice no longer reaches the citizen
            assert browser.text("#phone-hold") == "恢复通话"
            browser.find("#phone-hold").click()
            await asyncio.wait_for(resumed, 10)
            await until(lambda: hears(citizen, above=HEARD), 10)  # resumed: the agent is heard again
            assert re.fullmatch(r"\d\d:\d\d", talked) and browser.text("#phone-timer") > talked  # the call timer runs

            assert browser.find("#phone-transfer").is_displayed()  # the plan's targets, as the desk's 转接
            browser.find('#phone-transfer-target option[value="12360"]').click()
            consulted = ami.wait_for("DialEnd", lambda e: e.get("DialStatus") == "ANSWER" and
                                     str(e.get("DestChannel", "")).startswith("PJSIP/customs-"))
            browser.find("#phone-attended").click()
            await asyncio.to_thread(browser.wait_text, "#phone-note", "正在咨询 12360", 10)
            await until(lambda: hears(citizen, below=QUIET), 10)  # consulting: the citizen no longer hears the agent
            await asyncio.wait_for(consulted, 30)  # customs answered the agent's consultation
            transferred = ami.wait_for("AttendedTransfer", lambda e: e.get("TransfereeCallerIDNum") == caller)
            browser.find("#phone-hangup").click()  # 挂断 completes the attended transfer
            assert (await asyncio.wait_for(transferred, 10))["Result"] == "Success"
            await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 10)
            await hang_up_all(ami)  # the citizen, talking to customs, need not wait for its hold to end
            assert await customs.wait(20) == 0, customs.output()  # the customs gateway took the call
            await sipp.wait(20)
            ticket = await closed_ticket(tickets, caller, timeout=20)
            assert ticket.linkedid == linkedid and ticket.agent == AGENT and ticket.disposition == "transferred"
            attended = next(t for t in ticket.transfers if t.kind == "attended")
            consult = next(t for t in ticket.transfers if t.kind == "subcenter")
            assert (attended.number, attended.result) == ("12360", "Success")
            assert (consult.number, consult.target, consult.result) == ("12360", "customs", "ANSWER")
        finally:
            citizen.close()


@pytest.fixture
def refusing(console: ConsoleSite, tmp_path: Path) -> Iterator[Browser]:
    """A Chromium of its own whose microphone is refused (the session's grants it)."""
    (tmp_path / "refusing").mkdir()
    refuser = Browser(start_chromium(tmp_path / "refusing", microphone=False))
    try:
        yield refuser.at(console.url)
    finally:
        refuser.quit()


async def test_with_the_microphone_refused_the_page_says_so_and_the_seat_is_not_logged_in(
    engine: TestBed, refusing: Browser, browser: Browser, console: ConsoleSite, ami: AmiClient, web_seat: None,
) -> None:
    refusing.sign_in(console.account("agent", AGENT))
    assert refusing.fetch(f"/desk/{AGENT}/seat", "POST", {"action": "logout"})["status"] == 200
    refusing.open(f"/desk/{AGENT}")
    await asyncio.to_thread(refusing.wait_text, "#phone-error", "无法使用麦克风", 10)
    assert refusing.find("#phone").get_attribute("data-state") == "offline"
    await asyncio.to_thread(refusing.wait_text, "#seat-state", STATE_LABELS["logged_out"], 10)
    assert "transport=ws" not in await ami.command(f"pjsip show aor {AGENT}")  # never registered
    browser.sign_in(console.account("supervisor"))
    assert browser.fetch(f"/desk/{AGENT}/phone", "POST")["status"] == 403  # watches the desk: no account


def of_agent(event: dict[str, str]) -> bool:
    """An AMI event of the web seat's own channel."""
    return str(event.get("Channel", "")).startswith(f"PJSIP/{AGENT}-")


async def hears(leg: ToneLeg, *, above: float = 0.0, below: float = 1.0) -> bool:
    """Whether the agent's tone, in the next half second ``leg`` receives, is above or below a
    share; no audio within a second counts as silence (a muted browser may send no RTP at all)."""
    since = leg.mark()
    try:
        level = goertzel_share(await leg.heard(since, 0.5, timeout=1.0), FAKE_MIC_HZ)
    except AssertionError:
        level = 0.0
    return above < level < below


async def fetch_page(browser: Browser, path: str) -> dict[str, str]:
    """A page as the browser gets it: its text and its Content-Security-Policy."""
    return dict(await asyncio.to_thread(browser.driver.execute_async_script, """
        const [path, done] = arguments;
        fetch(path).then(async r => done({csp: r.headers.get('Content-Security-Policy'), text: await r.text()}));
    """, path))


async def _flowing(browser: Browser) -> dict[str, Any] | None:
    s = await stats(browser)
    return s if s.get("packetsSent") and s.get("packetsReceived") else None


async def _more(browser: Browser, first: dict[str, Any]) -> dict[str, Any] | None:
    s = await stats(browser)
    return s if s.get("packetsReceived", 0) > first["packetsReceived"] + 25 else None
