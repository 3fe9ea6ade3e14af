"""Tickets in a real redis-server: numbered on first write, one per linkedid, each phase
streamed once (replays included), expiring with the retention, found by number and caller."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.store import keyspace
from tickets.store import TicketStore
from testbed.ports import PortAllocator
from testbed.processes import start_redis
from tickets.model import Ticket

CALLER_KEY = b"test-caller-key-not-a-secret"  # keys the caller index (IVR_CALLER_KEY)

RECEIVED = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc).astimezone().isoformat()




@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    s = TicketStore(redis_url, tmp_path / "spool", name="server-1", retention_days=30, timeout=0.5, caller_key=CALLER_KEY)
    yield s
    await s.close()


def ticket(linkedid: str, caller: str = "13900000001", line: str = "12345") -> Ticket:
    return Ticket(linkedid=linkedid, line=line, caller=caller, received=RECEIVED)


async def events(store: TicketStore) -> list[tuple[str, str, str]]:
    return [(f["event"], f["linkedid"], f["number"]) for _id, f in await store.redis.xrange(keyspace.TICKET_EVENTS)]


def day() -> str:
    return datetime.fromisoformat(RECEIVED).astimezone().strftime("%Y%m%d")


async def test_given_a_new_call_when_its_ticket_is_written_then_it_gets_the_next_number_of_its_line_and_day(
    tickets: TicketStore,
) -> None:
    await tickets.write(ticket("1.1"), "opened")
    await tickets.write(ticket("1.2"), "opened")
    await tickets.write(ticket("1.3", line="12333"), "opened")
    await tickets.drain()
    numbers = [n for _e, _l, n in await events(tickets)]
    assert numbers == [f"{day()}-12345-00001", f"{day()}-12345-00002", f"{day()}-12333-00001"]
    stored = await tickets.get("1.2")
    assert stored is not None and stored.number == f"{day()}-12345-00002"  # the doc carries its number


async def test_given_a_ticket_when_a_phase_is_written_again_then_nothing_changes_and_nothing_is_streamed(
    tickets: TicketStore,
) -> None:
    t = ticket("2.1")
    await tickets.write(t, "opened")
    t.disposition = "answered"
    await tickets.write(t, "closed")
    await tickets.write(t, "closed")  # a replay, or a second engine following the same call
    await tickets.write(ticket("2.1"), "opened")  # a late, stale "opened"
    await tickets.drain()
    assert [e for e, _l, _n in await events(tickets)] == ["opened", "closed"]
    stored = await tickets.get("2.1")
    assert stored is not None and stored.disposition == "answered"  # the stale doc did not win
    assert await tickets.phases("2.1") == {"opened", "closed"}


async def test_given_two_engines_sharing_redis_when_both_write_tickets_then_every_number_is_unique(
    redis_url: str, tmp_path: Path,
) -> None:
    a = TicketStore(redis_url, tmp_path / "a", name="a", retention_days=30, caller_key=CALLER_KEY)
    b = TicketStore(redis_url, tmp_path / "b", name="b", retention_days=30, caller_key=CALLER_KEY)
    try:
        for n in range(20):
            await (a if n % 2 else b).write(ticket(f"3.{n}"), "opened")
        await a.drain()
        await b.drain()
        numbers = [n for _e, _l, n in await events(a)]
        assert len(numbers) == len(set(numbers)) == 20
    finally:
        await a.close()
        await b.close()


async def test_given_a_ticket_when_looked_up_by_number_as_printed_or_keyed_then_it_is_found(tickets: TicketStore) -> None:
    await tickets.write(ticket("4.1"), "opened")
    await tickets.drain()
    number = f"{day()}-12345-00001"
    printed = await tickets.by_number(number)
    keyed = await tickets.by_number(number.replace("-", ""))
    assert printed is not None and keyed is not None and printed.linkedid == keyed.linkedid == "4.1"
    assert await tickets.by_number("20000101123450001") is None


async def test_given_a_retention_then_tickets_numbers_and_indexes_expire_with_it(tickets: TicketStore) -> None:
    await tickets.write(ticket("5.1"), "opened")
    await tickets.drain()
    ttl = 30 * 86_400
    for key in (keyspace.ticket("5.1"), keyspace.ticket_number(f"{day()}-12345-00001"),
                keyspace.caller_tickets("13900000001", CALLER_KEY)):
        assert ttl - 10 <= await tickets.redis.ttl(key) <= ttl, key
    assert "13900000001" not in keyspace.caller_tickets("13900000001", CALLER_KEY)  # no number in a key name


async def test_given_a_caller_with_earlier_tickets_then_they_are_found_and_nobody_elses(tickets: TicketStore) -> None:
    await tickets.write(ticket("6.1", caller="13900000001"), "opened")
    await tickets.write(ticket("6.2", caller="13900000002"), "opened")
    await tickets.write(ticket("6.3", caller="13900000001"), "opened")
    await tickets.drain()
    since = datetime.fromisoformat(RECEIVED).timestamp() - 1
    assert [t.linkedid for t in await tickets.recent_for_caller("13900000001", since)] == ["6.1", "6.3"]
    assert await tickets.recent_for_caller("13900000001", since + 10) == []


async def test_given_redis_is_down_when_tickets_are_written_then_they_are_journaled_and_replayed_once(
    tmp_path: Path,
) -> None:
    port = PortAllocator().one()
    url = f"redis://127.0.0.1:{port}/0"
    store = TicketStore(url, tmp_path / "spool", name="server-1", retention_days=30, timeout=0.3, caller_key=CALLER_KEY)
    proc = None
    try:
        t = ticket("7.1")
        await store.write(t, "opened")
        t.disposition = "abandoned_queue"
        await store.write(t, "closed")
        await store.drain()  # Redis is not there: both stay in the journal
        assert store.journal.read_text().count("\n") == 2
        proc = start_redis(port, tmp_path)
        assert await store.flush_spool() == 2
        assert await store.flush_spool() == 0  # nothing twice
        assert [e for e, _l, _n in await events(store)] == ["opened", "closed"]
        assert not store.journal.exists()
    finally:
        await store.close()
        if proc:
            proc.kill()
            proc.wait()


async def test_given_a_ticket_key_of_another_type_then_that_write_is_set_aside_and_others_go_on(
    tickets: TicketStore,
) -> None:
    await tickets.redis.set(keyspace.ticket("8.1"), "an admin's mistake")
    await tickets.write(ticket("8.1"), "opened")
    await tickets.write(ticket("8.2"), "opened")
    await tickets.drain()
    assert [l for _e, l, _n in await events(tickets)] == ["8.2"]  # noqa: E741
    assert json.loads(tickets.bad_file.read_text())["linkedid"] == "8.1"
