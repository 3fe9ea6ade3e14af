"""The ticket page's recordings over real HTTP on a real Redis (no calls: the real call's playback
is tests/integration/test_recording_playback.py): who is offered the player, and a recording
deleted by retention says so, with its date, and is never served."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from console.app import create_app
from console.auth import SESSION_COOKIE
from console.context import Console
from ivr.config import WebSettings, load_config
from tickets.audit import read_audit
from tickets.model import QueueVisit, Recording, Ticket
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
DATA = b"OggS" + bytes(range(256)) * 4


@pytest.fixture
async def site(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[Console, dict[str, Ticket]]]:
    loaded = load_config(REPO / "config").settings
    settings = loaded.model_copy(update={"recording": loaded.recording.model_copy(
        update={"dir": str(tmp_path / "recordings"), "agents_play_own": True})})
    store = TicketStore(redis_url, tmp_path / "spool", "test", retention_days=1, caller_key=b"views-test-key")
    received = datetime.now().astimezone() - timedelta(hours=1)
    kept = Recording(file=f"{received:%Y/%m/%d}/kept.opus", mode="answer", seconds=0.5, size=len(DATA),
                     sha256=hashlib.sha256(DATA).hexdigest())
    (tmp_path / "recordings" / kept.file).parent.mkdir(parents=True)
    (tmp_path / "recordings" / kept.file).write_bytes(DATA)
    gone = Recording(file=f"{received:%Y/%m/%d}/gone.opus", mode="answer", seconds=0.5, size=len(DATA),
                     sha256=kept.sha256, deleted="2026-06-04T10:00:00+08:00", deleted_why="retention")
    failed = Recording(file="", mode="answer", stored=received.isoformat(), failed="disk-full")  # the disk was full
    short = Recording(file=kept.file, mode="answer", seconds=4.0, size=len(DATA), sha256=kept.sha256, expected=12.0)
    for linkedid, rec in (("v.1", kept), ("v.2", gone), ("v.3", failed), ("v.5", short)):
        await store.write(Ticket(linkedid=linkedid, line="12345", caller="13900000001", received=received.isoformat(),
                                 agent="agent1001", disposition="answered", queue="general", recordings=[rec]), "closed")
    # agent1001 answered the call; the callback it asked for was taken by agent1002, whom the citizen answered
    called_back = Recording(file=kept.file, mode="answer", seconds=0.5, size=len(DATA), sha256=kept.sha256,
                            source="v.4-cb-v.9.answer")
    await store.write(Ticket(linkedid="v.4", line="12345", caller="13900000001", received=received.isoformat(),
                             agent="agent1001", disposition="answered", queue="general",
                             queue_visits=[QueueVisit("general", received.isoformat(), outcome="answered", agent="agent1001")],
                             callback={"status": "answered", "attempts": [{"attempt": 1, "agent": "agent1003", "answered": False},
                                                                          {"attempt": 2, "agent": "agent1002", "answered": True}]},
                             recordings=[Recording(**{**vars(kept), "source": "v.4.answer"}), called_back]), "closed")
    await store.drain()
    tickets = {t.linkedid: t for t in [await store.get(f"v.{n}") for n in range(1, 6)] if t}
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield Console(redis=client, web=WebSettings(), settings=lambda: settings, config_dir=REPO / "config",
                  audit_log=tmp_path / "audit.jsonl", tickets=store), tickets
    await client.aclose()
    await store.close()


async def signed_in(console: Console, name: str, role: str, agent: str | None = None) -> tuple[TestClient, str]:
    user = await console.users.add(name, role, "correct horse battery", agent=agent, by="test")  # type: ignore[arg-type]
    session = await console.sessions.create(user)
    http = TestClient(TestServer(create_app(console)), cookies={SESSION_COOKIE: session.id})
    await http.start_server()
    return http, session.csrf


async def test_a_recording_deleted_by_retention_says_so_with_its_date_and_is_not_served(
        site: tuple[Console, dict[str, Ticket]]) -> None:
    console, tickets = site
    http, csrf = await signed_in(console, "sup", "supervisor")
    try:
        page = await (await http.get(f"/tickets/{tickets['v.2'].number}")).text()
        assert "录音已于 2026-06-04 按保存期限删除" in page and "recording-play" not in page
        reply = await http.post(f"/tickets/{tickets['v.2'].number}/recordings/1/play", data={"_csrf": csrf, "reason": "复核"})
        assert reply.status == 410 and "2026-06-04" in await reply.text()
        reply = await http.post(f"/tickets/{tickets['v.2'].number}/recordings/2/play", data={"_csrf": csrf, "reason": "复核"})
        assert reply.status == 404  # a recording the ticket does not have
    finally:
        await http.close()
    [line] = [e for e in read_audit(console.audit_log) if e.command == "console recording play"]
    assert line.what["refused"] == "deleted" and line.reason == "复核"


async def test_the_player_is_offered_to_supervisors_and_the_seat_that_answered(
        site: tuple[Console, dict[str, Ticket]]) -> None:
    console, tickets = site
    number = tickets["v.1"].number
    for name, role, agent in (("sup", "supervisor", None), ("adm", "admin", None), ("own", "agent", "agent1001")):
        http, csrf = await signed_in(console, name, role, agent)
        try:
            page = await (await http.get(f"/tickets/{number}")).text()
            assert 'id="recording-1"' in page and "recording-play" in page and "recording-download" in page, name
            reply = await http.post(f"/tickets/{number}/recordings/1/play", data={"_csrf": csrf, "reason": "复核"})
            assert reply.status == 200 and "/audio?grant=" in await reply.text(), name
        finally:
            await http.close()
    http, csrf = await signed_in(console, "other", "agent", "agent1002")
    try:
        reply = await http.post(f"/tickets/{number}/recordings/1/play", data={"_csrf": csrf, "reason": "复核"})
        assert reply.status == 403 and "座席只能播放自己接听的通话录音" in await reply.text()
    finally:
        await http.close()


async def test_a_recording_that_failed_says_why_and_nothing_is_offered_or_served(
        site: tuple[Console, dict[str, Ticket]]) -> None:
    console, tickets = site
    http, csrf = await signed_in(console, "sup", "supervisor")
    try:
        page = await (await http.get(f"/tickets/{tickets['v.3'].number}")).text()
        assert 'data-state="failed"' in page and "录音失败：录音磁盘已满，未录到声音" in page and "recording-play" not in page
        reply = await http.post(f"/tickets/{tickets['v.3'].number}/recordings/1/play", data={"_csrf": csrf, "reason": "复核"})
        assert reply.status == 409 and "录音磁盘已满" in await reply.text()
    finally:
        await http.close()
    [line] = [e for e in read_audit(console.audit_log) if e.command == "console recording play"]
    assert line.what["refused"] == "failed"


async def test_the_seat_that_talked_on_a_callback_plays_that_recording_and_not_the_call_another_seat_answered(
        site: tuple[Console, dict[str, Ticket]]) -> None:
    console, tickets = site
    number = tickets["v.4"].number
    allowed = {"agent1001": {1: 200, 2: 200}, "agent1002": {1: 403, 2: 200}, "agent1003": {1: 403, 2: 403}}
    for agent, replies in allowed.items():
        http, csrf = await signed_in(console, agent, "agent", agent)
        try:
            page = await (await http.get(f"/tickets/{number}")).text()
            for index, status in replies.items():
                offered = f'action="/tickets/{number}/recordings/{index}/play"' in page
                assert offered == (status == 200), (agent, index)
                reply = await http.post(f"/tickets/{number}/recordings/{index}/play", data={"_csrf": csrf, "reason": "复核"})
                assert reply.status == status, (agent, index, await reply.text())
        finally:
            await http.close()
    played = [(e.user.split("@")[0], e.what.get("recording")) for e in read_audit(console.audit_log)
              if e.command == "console recording play" and "refused" not in e.what]
    assert sorted(played) == [("agent1001", "1"), ("agent1001", "2"), ("agent1002", "2")], "each hearing audited"


async def test_a_recording_cut_short_says_so_on_the_ticket_and_in_the_player(
        site: tuple[Console, dict[str, Ticket]]) -> None:
    console, tickets = site
    number = tickets["v.5"].number
    http, csrf = await signed_in(console, "sup", "supervisor")
    try:
        page = await (await http.get(f"/tickets/{number}")).text()
        assert 'data-state="incomplete"' in page and "录音不完整（录到 4 秒，通话 12 秒）" in page and "recording-play" in page
        reply = await http.post(f"/tickets/{number}/recordings/1/play", data={"_csrf": csrf, "reason": "复核"})
        text = await reply.text()
        assert reply.status == 200 and 'id="recording-incomplete"' in text and "录音不完整" in text
        page = await (await http.get(f"/tickets/{tickets['v.1'].number}")).text()
        assert "录音不完整" not in page and 'data-state="kept"' in page
    finally:
        await http.close()
