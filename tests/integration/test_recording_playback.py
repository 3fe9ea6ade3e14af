"""Playing a real call's recording in the console (issue 21 item 3; docs/recording.md, "Playback").

One real recorded call per test bed (sipp's citizen and seat, MixMonitor, the engine's encoder:
tests/integration/test_recording.py's ``policy`` and ``talk``) gives the ticket; the tests then
play it in headless Chromium as a supervisor (the <audio> element's duration, a seek, a Range
request answered 206 with the file's bytes), refuse an agent another seat's recording, find both
in the audit log page, let an agent play its own call only where ``agents_play_own`` says so, and
attack the grant: another user's grant, another recording's, a path, an altered or missing file,
no reason, no CSRF token.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.store import keyspace
from recording.grants import GRANT_SECONDS
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.calls import Phones, run_ivr
from testbed.console import ConsoleSite, add_user, http_client, sign_in_http
from testbed.sipp import keys
from test_recording import SEAT, kept, policy, talk  # noqa: F401 (policy: the fixture that switches recording on)
from tickets.model import Recording, Ticket
from tickets.store import TicketStore

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")
TALK_MS = 4000
RECORDED: dict[str, str] = {}  # the linkedid of this bed's recorded call: one call for the module's tests
AUDIO_URL = re.compile(r'src="(/tickets/[0-9-]+/recordings/[0-9]+/audio\?grant=[A-Za-z0-9_-]+)"')
OWN_OFF, OWN_ON = "  agents_play_own: false\n", "  agents_play_own: true\n"


@pytest.fixture
def recording_on(request: pytest.FixtureRequest) -> Path | None:
    """test_recording.py's policy (recording on) for the test that makes the call, not the others
    (each switch reloads Asterisk). Sync: an async fixture cannot ask for another one on demand."""
    return None if "linkedid" in RECORDED else request.getfixturevalue("policy")


@pytest.fixture
async def recorded(recording_on: Path | None, engine: TestBed, phones: Phones, ami: AmiClient,
                   tickets: TicketStore, tmp_path: Path) -> Ticket:
    """The ticket of a real recorded call answered by SEAT, its recording kept (made on first use)."""
    if recording_on is not None:
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), TALK_MS, [],
                               recording_on / "incoming")
        RECORDED["linkedid"] = ticket.linkedid
    ticket = await kept(tickets, RECORDED["linkedid"])
    assert ticket.agent == SEAT and len(ticket.recordings) == 1 and not ticket.recordings[0].deleted
    return ticket


def file_of(engine: TestBed, rec: Recording) -> Path:
    assert engine.state
    return Path(engine.state.recording_dir) / rec.file


def other_seat(engine: TestBed) -> str:
    return next(name for name in engine.settings.agents if name != SEAT)


async def ask(http: aiohttp.ClientSession, site: ConsoleSite, number: str, csrf: str | None, reason: str | None,
              purpose: str = "play", index: int = 1) -> tuple[int, str, str]:
    """POST the ticket page's form: (status, page, the audio URL it gives or '')."""
    form = {k: v for k, v in (("_csrf", csrf), ("reason", reason)) if v is not None}
    async with http.post(f"{site.url}/tickets/{number}/recordings/{index}/{purpose}", data=form,
                         allow_redirects=False) as reply:
        text = await reply.text()
        url = reply.headers.get("Location", "") if reply.status == 303 else (m[1] if (m := AUDIO_URL.search(text)) else "")
        return reply.status, text, url


async def get(http: aiohttp.ClientSession, site: ConsoleSite, url: str, **headers: str) -> tuple[int, bytes, Any]:
    async with http.get(site.url + url, headers=headers, allow_redirects=False) as reply:
        return reply.status, await reply.read(), reply.headers


async def test_a_supervisor_plays_a_real_recording_in_chromium_and_an_agent_is_refused_another_seats_both_audited(
    engine: TestBed, recorded: Ticket, browser: Browser, console: ConsoleSite,
) -> None:
    rec, number = recorded.recordings[0], recorded.number
    data = file_of(engine, rec).read_bytes()
    reason = f"市民对答复有异议，复核 {secrets.token_hex(3)}"

    assert engine.state
    code, out = await run_ivr(engine.state, "recordings", "play-url", number)  # what operations hand on
    assert code == 0 and out.strip() == f"{console.url}/tickets/{number}#recording-1", out
    browser.sign_in(console.account("supervisor")).open(f"/tickets/{number}#recording-1")
    browser.fill("#recording-1 .recording-reason", reason)
    browser.submit("#recording-1 .recording-play")
    duration = browser.wait(lambda d: d.execute_script(
        "const a = document.getElementById('player'); return a.readyState >= 1 && isFinite(a.duration) && a.duration"), 20)
    assert abs(duration - rec.seconds) <= 1.0, (duration, rec.seconds)
    assert abs(rec.seconds - TALK_MS / 1000) <= 1.5, rec.seconds  # the talk, not the wait
    seeked = browser.driver.execute_async_script("""
        const [to, done] = arguments; const a = document.getElementById('player');
        a.addEventListener('seeked', () => done(a.currentTime), {once: true}); a.currentTime = to;""", duration / 2)
    assert abs(seeked - duration / 2) <= 0.5, seeked
    ranged = browser.driver.execute_async_script("""
        const [url, done] = arguments;
        fetch(url, {headers: {Range: 'bytes=100-199'}}).then(async r => done({status: r.status,
            range: r.headers.get('Content-Range'), type: r.headers.get('Content-Type'),
            bytes: Array.from(new Uint8Array(await r.arrayBuffer()))}));""", browser.find("#player").get_attribute("src"))
    assert ranged["status"] == 206 and ranged["range"] == f"bytes 100-199/{len(data)}", ranged["range"]
    assert bytes(ranged["bytes"]) == data[100:200] and ranged["type"] == "audio/ogg"

    other = console.account("agent", other_seat(engine))
    browser.at(console.url).sign_in(other)
    refused = browser.fetch(f"/tickets/{number}/recordings/1/play", "POST", {"reason": "想听听"})
    assert refused["status"] == 403 and "无权访问" in refused["text"] and "座席只能播放自己接听的通话录音" in refused["text"]

    browser.at(console.url).sign_in(console.account("admin")).open(f"/audit?q={number}")
    rows = [r.text for r in browser.all("#audit tbody tr")]
    played = [r for r in rows if "控制台播放录音" in r and reason in r]  # console recording play, as staff read it
    assert len(played) == 1 and console.account("supervisor").name in played[0] and "录音：1" in played[0], rows
    assert any("控制台拒绝访问" in r and other.name in r and f"/tickets/{number}/recordings/1/play" in r
               and "座席只能播放自己接听的通话录音" in r for r in rows), rows


async def test_an_agent_plays_its_own_calls_recording_only_where_the_policy_allows_it(
    engine: TestBed, recorded: Ticket, console: ConsoleSite, config_dir: Path,
) -> None:
    assert engine.state
    number, data = recorded.number, file_of(engine, recorded.recordings[0]).read_bytes()
    path = config_dir / "recording.yaml"
    text = path.read_text(encoding="utf-8")
    assert OWN_OFF in text
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("agent", SEAT))
        async with http.get(f"{console.url}/tickets/{number}") as page:
            assert 'class="recording-play"' in await page.text(), "its own ticket offers the player"
        status, page, url = await ask(http, console, number, csrf, "回访前核对承诺内容")
        assert status == 403 and "recording.agents_play_own" in page and not url

        path.write_text(text.replace(OWN_OFF, OWN_ON), encoding="utf-8")
        try:
            code, out = await run_ivr(engine.state, "reload")
            assert code == 0, out
            status, page, url = await ask(http, console, number, csrf, "回访前核对承诺内容")
            assert status == 200 and url, page
            status, body, _ = await get(http, console, url)
            assert status == 200 and body == data
        finally:
            path.write_text(text, encoding="utf-8")
            code, out = await run_ivr(engine.state, "reload")
            assert code == 0, out
        status, page, _ = await ask(http, console, number, csrf, "回访前核对承诺内容")
        assert status == 403, "the policy is off again"
    lines = [e for e in console.audit() if e.what.get("number") == number and e.user == f"agent-{SEAT}@console"]
    assert [e.command for e in lines] == ["console recording play"] and lines[0].reason == "回访前核对承诺内容"


async def test_a_grant_serves_only_its_user_and_recording_an_intact_file_and_needs_a_reason_and_the_csrf_token(
    engine: TestBed, recorded: Ticket, console: ConsoleSite, redis: aioredis.Redis,
) -> None:
    rec, number = recorded.recordings[0], recorded.number
    path = file_of(engine, rec)
    data = path.read_bytes()
    a_account = console.account("supervisor")
    b_account = add_user(console.redis_url, f"supervisor-b-{secrets.token_hex(3)}", "supervisor")
    before = len(console.audit())
    async with http_client() as a, http_client() as b:
        a_csrf, b_csrf = await sign_in_http(a, console, a_account), await sign_in_http(b, console, b_account)

        status, page, url = await ask(a, console, number, None, "复核")  # no CSRF token
        assert status == 403 and "CSRF" in page and not url
        status, page, url = await ask(a, console, number, a_csrf, "  ")  # no reason
        assert status == 400 and "需要理由" in page and not url

        status, page, url = await ask(a, console, number, a_csrf, "复核诉求记录")
        assert status == 200 and url, page
        assert (await get(a, console, url))[:2] == (200, data)
        token = url.rsplit("=", 1)[1]
        assert 0 < await redis.ttl(keyspace.recording_grant(token)) <= GRANT_SECONDS, "a grant is short-lived"
        assert not await redis.keys(f"*{token}*"), "the token itself is not in Redis (its digest is)"
        status, body, _ = await get(b, console, url)  # user A's grant in user B's session
        assert status == 403 and data[:64] not in body
        for forged in (f"/tickets/{number}/recordings/2/audio?grant={token}",  # recording 1's grant for recording 2
                       f"/tickets/{number[:-1]}{(int(number[-1]) + 1) % 10}/recordings/1/audio?grant={token}",
                       f"/tickets/{number}/recordings/1/audio?grant=..%2F..%2F..%2Fetc%2Fpasswd",
                       f"/tickets/{number}/recordings/1/audio?grant=",
                       f"/tickets/{number}/recordings/..%2F..%2F..%2F..%2Fetc%2Fpasswd/audio?grant={token}",
                       f"/tickets/{number}/recordings/1/..%2F..%2F..%2F..%2Fetc%2Fpasswd?grant={token}"):
            status, body, _ = await get(a, console, forged)
            assert status in (403, 404) and b"root:" not in body and data[:64] not in body, (forged, status)

        status, _, download = await ask(b, console, number, b_csrf, "部门调取证据", purpose="download")
        assert status == 303 and download
        status, body, headers = await get(b, console, download)
        assert status == 200 and body == data and headers["Content-Disposition"].startswith("attachment;")

        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0x01  # one bit of the audio
        try:
            path.write_bytes(bytes(flipped))
            status, _, _ = await get(a, console, url)  # granted before the change
            assert status == 409
            status, page, url2 = await ask(a, console, number, a_csrf, "复核诉求记录")
            assert status == 409 and "录音文件已被改动" in page and not url2
            path.unlink()
            status, page, url2 = await ask(a, console, number, a_csrf, "复核诉求记录")
            assert status == 409 and "录音文件缺失" in page and not url2
        finally:
            path.write_bytes(data)
        status, _, _ = await get(a, console, url)
        assert status == 409, "a grant is for the file as verified: the same bytes written again need a new one"
        status, _, url = await ask(a, console, number, a_csrf, "复核诉求记录")
        assert status == 200 and (await get(a, console, url))[:2] == (200, data)

    lines = [e for e in console.audit()[before:] if e.what.get("number") == number and e.user in (
        f"{a_account.name}@console", f"{b_account.name}@console")]
    assert [(e.command, e.what.get("refused", "")) for e in lines] == [
        ("console recording play", "no reason"), ("console recording play", ""),
        ("console recording download", ""), ("console recording play", "altered after grant"),
        ("console recording play", "altered"), ("console recording play", "missing"),
        ("console recording play", "altered after grant"), ("console recording play", "")], lines
    assert {e.reason for e in lines if not e.what.get("refused")} == {"复核诉求记录", "部门调取证据"}
