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
transfer. The call's RTCPeerConnection has the configured STUN and TURN servers, the TURN one with
this sign-in's credentials (TURN REST API). The password the page registered with is this
sign-in's own: signing out revokes it and the next sign-in's page registers with another. A second
test places two short calls: 挂断 from the page (the agent's leg ends, the citizen is asked the
satisfaction question, the ticket closes as answered and ended by the agent) and the panel's blind
转接 to 12360 (customs takes the citizen, the ticket records the blind transfer). This module's seat becomes a web
phone on the session's bed (config reloaded, as a deployment would), not a bed of its own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.core.phone_auth import AUTH_FAMILY, auth_id
from ivr.core.secret_policy import fresh_secret
from queues.agents import STATE_LABELS
from queues.seat_control import SeatControl
from queues.wish_store import SeatWishes
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.browser import FAKE_MIC_HZ, Browser, phone_flowing, phone_stats, start_chromium
from testbed.calls import Phones, closed_ticket, for_caller, hang_up_all, only_seat, until
from testbed.console import ConsoleSite
from testbed.rtp import ToneLeg, goertzel_share
from testbed.sip_sockets import register_status
from testbed.sipp import Key, Sipp

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")

AGENT = "agent1003"
JSSIP = Path(__file__).resolve().parents[2] / "console" / "static" / "jssip.min.js"
CITIZEN_HZ = 600
PHONES = "phones:\n  qualify: {every: 15, timeout: 3}\n"
WRAPUP = "    wrapup: 5\n"  # the general queue's
QUIET = 0.1
HEARD = 0.5  # share of a second's energy at one frequency: the tone is there (testbed/rtp.py)

FAKE_MIC_2 = "Fake Audio Input 2"
SENDING = "return window.ivrDeskPhone.connection().getSenders().map(s => s.track && s.track.label).join()"


@pytest.fixture(scope="module")
def web_seat(bed: TestBed, config_dir: Path) -> Iterator[None]:
    """``AGENT``'s phone is the desk page's for this module, on the bed's own WebSocket port
    (edited in the session's private config/, then Asterisk's files and the engine reloaded, as a
    deployment does); a sipp's again afterwards, the seat logged in as the session expects. The
    general queue has no wrap-up meanwhile: a call placed at once after the page's 挂断 rings the
    seat instead of waiting through the queue's announcements."""
    assert bed.state and bed.state.http_port
    assert JSSIP.is_file(), f"{JSSIP} is not built: ./run's setup builds it (by hand: cd console && npm ci " \
        "--ignore-scripts && npm run build)"
    if not bed.state.engine_pid:  # as the ``engine`` fixture: a previous module may have stopped it
        bed.start_engine()
    path = config_dir / "queues.yaml"
    original = path.read_text(encoding="utf-8")
    seat = next(line for line in original.splitlines() if line.strip().startswith(f"{AGENT}:"))
    port = bed.state.http_port
    assert seat.rstrip().endswith("}") and PHONES in original and original.count(WRAPUP) == 1
    path.write_text(original.replace(seat, seat.rstrip()[:-1] + ", phone: web}").replace(WRAPUP, "    wrapup: 0\n").replace(
        PHONES, PHONES + f'  web: {{listen: "127.0.0.1:{port}", url: "ws://127.0.0.1:{port}/ws", {ice_settings(config_dir)}}}\n'),
        encoding="utf-8")
    try:
        asyncio.run(reload_all(bed))
        yield
    finally:
        path.write_text(original, encoding="utf-8")
        asyncio.run(reload_all(bed))
        asyncio.run(log_in_everywhere(bed))


# The page's STUN and TURN servers: loopback ports nothing answers on (no TURN server in the bed; the
# page answers ICE_WAIT_MS after its first candidate all the same), the TURN secret in a file of the
# deployment (phones.web.turn_secret), credentials for 2 h
ICE = (f"stun:127.0.0.1:{Phones.free_port()}", f"turn:127.0.0.1:{Phones.free_port()}?transport=udp")
TURN_LIFETIME = 7200


def ice_settings(config_dir: Path) -> str:
    """``phones.web``'s ICE settings, the TURN secret written beside the deployment's config/."""
    (config_dir.parent / "turn.secret").write_text(fresh_secret() + "\n", encoding="utf-8")
    return (f"ice_servers: [{', '.join(repr(u) for u in ICE)}], turn_lifetime: {TURN_LIFETIME}, "
            f"turn_secret: {{file: {config_dir.parent / 'turn.secret'}}}")


def check_ice_servers(browser: Browser, config_dir: Path) -> None:
    """The call's RTCPeerConnection has the configured STUN server, and the TURN server with this
    sign-in's credentials: ``<expiry>:<seat>`` and base64(HMAC-SHA1(secret, username))."""
    servers = browser.driver.execute_script("return window.ivrDeskPhone.connection().getConfiguration().iceServers")
    secret = (config_dir.parent / "turn.secret").read_text(encoding="utf-8").strip()
    stun, turn = servers
    assert stun["urls"] == [ICE[0]] and not stun.get("username"), servers
    assert turn["urls"] == [ICE[1]], servers
    expiry, seat = turn["username"].split(":")
    assert seat == AGENT and 0 <= int(expiry) - time.time() <= TURN_LIFETIME, servers
    expected = base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected, servers


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


async def test_the_desk_page_phone_registers_logs_the_seat_in_rings_with_the_ticket_answers_and_talks(
    engine: TestBed, browser: Browser, console: ConsoleSite, phones: Phones, ami: AmiClient, tickets: TicketStore,
    web_seat: None, config_dir: Path,
) -> None:
    assert engine.state
    ws = f"ws://127.0.0.1:{engine.state.http_port}/ws"
    browser.sign_in(console.account("agent", AGENT))
    assert browser.fetch(f"/desk/{AGENT}/seat", "POST", {"action": "logout"})["status"] == 200
    page = await fetch_page(browser, f"/desk/{AGENT}")
    assert f"connect-src 'self' {ws}" in page["csp"] and engine.state.agent_secrets[AGENT] not in page["text"]
    assert (config_dir.parent / "turn.secret").read_text().strip() not in page["text"] and "credential" not in page["text"]
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
            check_ice_servers(browser, config_dir)
            await asyncio.to_thread(browser.wait_for, f'#call[data-state="connected"][data-linkedid="{linkedid}"]', 10)

            assert await citizen.level(FAKE_MIC_HZ, citizen.mark(), 1.0) > HEARD  # the agent's voice reached the citizen
            first = await until(lambda: phone_flowing(browser), 10)
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
            agent_leg = await ami.command(f"core show channel {up['DestChannel']}")  # the page's re-offers kept A-law
            assert "ReadTranscode: No" in agent_leg and "WriteTranscode: No" in agent_leg, agent_leg
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
    await sign_out_revokes_and_the_next_sign_in_gets_a_new_password(engine, browser, console, ami)


async def test_the_panel_hangs_up_an_ordinary_call_and_transfers_one_blind(
    engine: TestBed, browser: Browser, console: ConsoleSite, phones: Phones, ami: AmiClient, tickets: TicketStore,
    web_seat: None,
) -> None:
    browser.sign_in(console.account("agent", AGENT))
    browser.open(f"/desk/{AGENT}")
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 20)
    await asyncio.to_thread(browser.wait_text, "#seat-state", STATE_LABELS["available"], 15)
    async with only_seat(engine, ami, AGENT):
        transferred = phones.next_caller()  # customs' gateway up (and probed) while the first call runs
        customs = asyncio.create_task(phones.subcenter("customs", transferred))
        try:
            await hang_up_from_the_page(browser, phones, ami, tickets)
        finally:
            gateway = await customs
        await blind_transfer_from_the_page(browser, phones, ami, tickets, transferred, gateway)


async def answer_in_the_page(browser: Browser, phones: Phones, caller: str | None = None) -> tuple[Sipp, str]:
    """A citizen's call to 12345 (menu 0), holding 60 s unless hung up, rung and answered in the
    page; (its sipp, its caller)."""
    sipp, caller = await phones.call("12345", [Key("0", 1500)], hold_ms=60_000, caller=caller)
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="ringing"]', 30)
    browser.find("#phone-answer").click()
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="talking"]', 10)
    await asyncio.to_thread(browser.wait_for, '#call[data-state="connected"]', 10)
    return sipp, caller


async def hang_up_from_the_page(browser: Browser, phones: Phones, ami: AmiClient, tickets: TicketStore) -> None:
    """挂断 on an ordinary call: the agent's leg ends and the citizen goes on to the satisfaction
    question (as after a softphone's hang-up); the citizen hanging up there, the ticket closes as
    answered and ended by the agent."""
    caller = phones.next_caller()
    asked = ami.wait_for("UserEvent", lambda e: e.get("UserEvent") == "IvrSurvey" and e.get("CallerIDNum") == caller)
    sipp, _ = await answer_in_the_page(browser, phones, caller)
    browser.find("#phone-hangup").click()
    await ami.action({"Action": "Hangup", "Channel": (await asyncio.wait_for(asked, 10))["Channel"]})
    assert await sipp.wait(10) == 0, sipp.output()  # the citizen's sipp took Asterisk's BYE
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 10)
    ticket = await closed_ticket(tickets, caller, timeout=20)
    assert (ticket.agent, ticket.hangup_by, ticket.disposition) == (AGENT, "agent", "answered") and not ticket.transfers, ticket


async def blind_transfer_from_the_page(browser: Browser, phones: Phones, ami: AmiClient, tickets: TicketStore,
                                       caller: str, customs: Sipp) -> None:
    """The panel's 转接 (blind) to 12360 of ``caller``'s call: the engine's BlindTransfer of the
    agent's channel, the ``customs`` gateway answers the citizen, the ticket records the agent and
    the blind transfer."""
    answered = ami.wait_for("DialEnd", lambda e: e.get("DialStatus") == "ANSWER" and
                            str(e.get("DestChannel", "")).startswith("PJSIP/customs-"))
    sipp, _ = await answer_in_the_page(browser, phones, caller)
    blind = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
    browser.find('#phone-transfer-target option[value="12360"]').click()
    browser.find("#phone-blind").click()
    await asyncio.to_thread(browser.wait_text, "#phone-note", "已转接至 12360", 10)
    assert (await asyncio.wait_for(blind, 10))["Result"] == "Success"
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 10)  # the agent's leg is gone
    await asyncio.wait_for(answered, 20)  # customs took the citizen
    await hang_up_all(ami)
    assert await customs.wait(20) == 0, customs.output()
    await sipp.wait(20)
    ticket = await closed_ticket(tickets, caller, timeout=20)
    assert ticket.disposition == "transferred" and ticket.agent == AGENT, ticket
    assert [(t.kind, t.number) for t in ticket.transfers][:2] == [("blind", "12360"), ("subcenter", "12360")], ticket
    assert ticket.transfers[1].result == "ANSWER", ticket


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


async def sign_out_revokes_and_the_next_sign_in_gets_a_new_password(
    engine: TestBed, browser: Browser, console: ConsoleSite, ami: AmiClient,
) -> None:
    """The page's phone registered with a password of this sign-in (the seat's static secret no
    longer registers it); signing out revokes it (a REGISTER with it: 401) and, the page left,
    the contact goes; the next sign-in's page registers with another."""
    assert engine.state
    port, static = engine.state.sip_port, engine.state.agent_secrets[AGENT]
    first = await installed_password(ami)
    assert 0 < await registered_for(ami) <= 120  # a revoked page's contact lasts 2 min at most (WEB_AOR)
    assert await asyncio.to_thread(register_status, port, AGENT, first) == 200  # Asterisk takes the issued one
    assert await asyncio.to_thread(register_status, port, AGENT, static) == 401  # the seat's static secret: no more
    browser.sign_out()  # revoked; the page is left, its WebSocket closes
    assert await asyncio.to_thread(register_status, port, AGENT, first) == 401
    await until(lambda: no_web_contact(ami), 10)
    browser.sign_in(console.account("agent", AGENT))
    browser.open(f"/desk/{AGENT}")
    await asyncio.to_thread(browser.wait_for, '#phone[data-state="registered"]', 20)  # with a new password
    second = await installed_password(ami)
    assert second != first and await asyncio.to_thread(register_status, port, AGENT, second) == 200
    assert await asyncio.to_thread(register_status, port, AGENT, first) == 401
    audited = [(e.command, e.what.get("on")) for e in console.audit()
               if e.command.startswith("desk phone account") and e.what.get("agent") == AGENT][-4:]
    assert audited == [("desk phone account", None), ("desk phone account revoked", "sign-out"),
                       ("desk phone account revoked", "sign-in"), ("desk phone account", None)], audited


async def installed_password(ami: AmiClient) -> str:
    """The seat's password Asterisk holds now: in AstDB, where PJSIP reads it (ivr/core/phone_auth.py)."""
    value = await ami.command(f"database get {AUTH_FAMILY} {auth_id(AGENT)}")
    return str(json.loads(value.split("Value: ", 1)[1].strip())["password"])


async def registered_for(ami: AmiClient) -> float:
    """Seconds left of the seat's registration, as Asterisk's registrar keeps it (AstDB)."""
    rows = (await ami.command("database show registrar/contact")).splitlines()
    row = next(r for r in rows if r.startswith(f"/registrar/contact/{AGENT};@"))
    return int(json.loads(row.split(": ", 1)[1])["expiration_time"]) - time.time()


async def no_web_contact(ami: AmiClient) -> bool:
    return "transport=ws" not in await ami.command(f"pjsip show aor {AGENT}")


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


async def _more(browser: Browser, first: dict[str, Any]) -> dict[str, Any] | None:
    s = await phone_stats(browser)
    return s if s.get("packetsReceived", 0) > first["packetsReceived"] + 25 else None
