"""Ticket lists and exports over real HTTP on a real Redis, watched with Redis' MONITOR: an
agent's list reads only its own seat's tickets, a page reads one page, older pages follow by
cursor, and an export streams every row (finding 8: a month of tickets loaded and parsed on the
engine's loop before the agent's filter)."""

from __future__ import annotations

import csv
import io
import re
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from console.app import create_app
from console.auth import SESSION_COOKIE
from console.context import Console
from ivr.store import keyspace
from ivr.config import WebSettings, load_config
from tickets.store import TicketStore
from tickets.reads import TicketReader
from tickets.audit import read_audit
from tickets.model import Ticket

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
OWN, OTHERS = 30, 570  # agent1001's tickets, everybody else's
TIED = (399, 400, 401)  # received in the same instant, across the first page's end (newest first)


def made() -> list[Ticket]:
    now = datetime.now().astimezone()  # two hours ago, but today: the list starts at today's 00:00
    start = max(now - timedelta(hours=2), now.replace(hour=0, minute=0, second=0, microsecond=0))
    out = []
    for i in range(OWN + OTHERS):
        agent = "agent1001" if i % 20 == 0 else "agent1002"
        received = start + timedelta(seconds=400 if i in TIED else i)
        out.append(Ticket(linkedid=f"p.{i}", line="12345", caller=f"139{i:08d}", received=received.isoformat(),
                          agent=agent, disposition="answered", queue="general"))
    return out


@pytest.fixture
async def console(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[Console, list[Ticket]]]:
    settings = load_config(REPO / "config").settings
    store = TicketStore(redis_url, tmp_path / "spool", "test", retention_days=1, caller_key=b"pages-test-key")
    for t in made():
        await store.write(t, "closed")
    await store.drain()
    written = [t for t in [await store.get(f"p.{i}") for i in range(OWN + OTHERS)] if t]
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield Console(redis=client, web=WebSettings(), settings=lambda: settings, config_dir=REPO / "config",
                  audit_log=tmp_path / "audit.jsonl", tickets=store), written
    await client.aclose()
    await store.close()


async def signed_in(console: Console, role: str, agent: str | None = None) -> TestClient:
    name = f"{role}-user"
    user = await console.users.add(name, role, PASSWORD, agent=agent, by="test")  # type: ignore[arg-type]
    session = await console.sessions.create(user)
    http = TestClient(TestServer(create_app(console)), cookies={SESSION_COOKIE: session.id})
    await http.start_server()
    return http


@asynccontextmanager
async def ticket_docs_read(redis_url: str) -> AsyncIterator[set[str]]:
    """The linkedids whose ticket doc Redis served inside the block (every command, as MONITOR
    sees it; the block ends once a marker sent after it has come through)."""
    read: set[str] = set()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    async with client.monitor() as monitor:
        yield read
        await client.echo("end-of-block")
        while (command := (await monitor.next_command())["command"]) != "ECHO end-of-block":
            if command.startswith(f"HGET {keyspace.ticket('')}") and command.endswith(" doc"):
                read.add(command.split()[1].removeprefix(keyspace.ticket("")))
    await client.aclose()


def rows(html: str) -> list[str]:
    return re.findall(r'<a href="/tickets/([0-9-]+)">', html)


async def test_an_agents_list_reads_only_its_own_seats_tickets(console: tuple[Console, list[Ticket]],
                                                              redis_url: str) -> None:
    site, tickets = console
    own = {t.linkedid for t in tickets if t.agent == "agent1001"}
    http = await signed_in(site, "agent", "agent1001")
    try:
        async with ticket_docs_read(redis_url) as read:
            page = await (await http.get("/tickets")).text()
        assert sorted(rows(page)) == sorted(t.number for t in tickets if t.agent == "agent1001")
        assert read == own  # none of the 570 other tickets was even fetched
        assert "共 30 张" in page
        async with ticket_docs_read(redis_url) as read:
            export = await http.get("/tickets/export.csv?seat=agent1001")
            table = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
        assert {r["linkedid"] for r in table} == own and read == own
    finally:
        await http.close()


async def test_a_page_reads_one_page_and_older_pages_follow_by_cursor(console: tuple[Console, list[Ticket]],
                                                                      redis_url: str) -> None:
    site, tickets = console
    http = await signed_in(site, "supervisor")
    newest_first = sorted(tickets, key=lambda t: (t.received, t.linkedid), reverse=True)
    try:
        shown: list[str] = []
        url: str | None = "/tickets"
        while url:
            async with ticket_docs_read(redis_url) as read:
                page = await (await http.get(url)).text()
            assert len(read) <= 200 + len(TIED)  # a page (and the ties of its last instant), never the range
            assert "共 600 张" in page
            shown.append(rows(page))
            older = re.search(r'href="(/tickets\?[^"]+)" id="older"', page)
            url = older[1].replace("&amp;", "&") if older else None
        assert [len(p) for p in shown] == [201, 200, 199]  # the first page ends after the tied three
        assert sum(shown, []) == [t.number for t in newest_first]  # none twice, none skipped at the tie
        # a filter no index answers reads batches only until the page is full
        async with ticket_docs_read(redis_url) as read:
            page = await (await http.get("/tickets?line=12345")).text()
        assert len(rows(page)) == 201 and len(read) < 600 and "本页 201 张" in page
    finally:
        await http.close()


async def test_an_export_streams_every_row_and_an_unmasked_one_is_audited_first(
    console: tuple[Console, list[Ticket]], redis_url: str,
) -> None:
    site, tickets = console
    http = await signed_in(site, "supervisor")
    try:
        response = await http.get("/tickets/export.csv")
        assert response.status == 200 and response.headers.get("Transfer-Encoding") == "chunked"
        body = await response.read()
        assert body.startswith(b"\xef\xbb\xbfnumber,received,line")
        table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert sorted(r["number"] for r in table) == sorted(t.number for t in tickets)
        assert all(r["caller"].startswith("139****") for r in table)

        form = await (await http.get("/tickets")).text()
        token = re.search(r'name="_csrf" value="([^"]+)"', form)
        assert token
        unmasked = await http.post("/tickets/export.csv", data={"_csrf": token[1], "reason": "回访核查"})
        table = list(csv.DictReader(io.StringIO((await unmasked.read()).decode("utf-8-sig"))))
        assert sorted(r["caller"] for r in table) == sorted(t.caller for t in tickets)
        entry = read_audit(site.audit_log)[-1]
        assert (entry.command, entry.tickets, entry.callers, entry.reason) == (
            "console tickets export", 600, 600, "回访核查")
    finally:
        await http.close()


async def test_an_agent_index_is_written_once_with_the_ticket_and_only_for_an_agent(
    console: tuple[Console, list[Ticket]],
) -> None:
    site, tickets = console
    assert site.tickets is not None
    index = await site.redis.zrange(keyspace.agent_tickets("agent1001"), 0, -1)
    assert sorted(index) == sorted(t.linkedid for t in tickets if t.agent == "agent1001")
    unanswered = Ticket(linkedid="p.none", line="12345", caller="13900000000", received=tickets[0].received,
                        disposition="abandoned_queue")
    for _replay in range(2):
        await site.tickets.write(unanswered, "closed")
        await site.tickets.drain()
    assert not await site.redis.exists(keyspace.agent_tickets(""))
    assert await site.redis.zcard(keyspace.agent_tickets("agent1001")) == OWN
    handed = next(t for t in tickets if t.agent == "agent1001")
    handed.agent = "agent1003"  # a later phase: the call went on to another seat
    await site.tickets.write(handed, "transferred", rev=40)
    handed.agent = "agent1001"  # a late, older write must not put it back
    await site.tickets.write(handed, "late", rev=35)
    await site.tickets.drain()
    assert await site.redis.zrange(keyspace.agent_tickets("agent1003"), 0, -1) == [handed.linkedid]
    assert await site.redis.zcard(keyspace.agent_tickets("agent1001")) == OWN - 1


async def test_tickets_from_before_the_agent_index_join_it_once(console: tuple[Console, list[Ticket]],
                                                                 redis_url: str) -> None:
    site, tickets = console
    await site.redis.delete(keyspace.agent_tickets("agent1001"), keyspace.agent_tickets("agent1002"))  # as before
    reader = TicketReader(site.redis)
    assert await reader.index_agents(86_400) == 600
    assert sorted(await site.redis.zrange(keyspace.agent_tickets("agent1001"), 0, -1)) == sorted(
        t.linkedid for t in tickets if t.agent == "agent1001")
    assert 0 < await site.redis.ttl(keyspace.agent_tickets("agent1001")) <= 86_400
    assert await reader.index_agents(86_400) == 0  # done once per Redis
