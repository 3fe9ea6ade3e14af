"""Service-level counters in a real redis-server: a queue visit's write adds its increments to
its buckets exactly once — replayed from a journal after an outage, replayed again by a flusher,
or written by two engines following the same call — and the report reads them back."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import pytest

from ivr.store import keyspace
from tickets.store import TicketStore
from testbed.ports import PortAllocator
from testbed.processes import start_redis
from queues import kpi
from tickets.model import QueueVisit, Ticket

KEY = b"kpi-test-caller-key-0123456789"

NOW = datetime.now().astimezone()
JOINED = NOW - timedelta(minutes=10)


@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    s = TicketStore(redis_url, tmp_path / "spool", name="server-1", retention_days=30, timeout=0.5, caller_key=KEY)
    yield s
    await s.close()


def call(linkedid: str, wait: float, outcome: str = "answered") -> tuple[Ticket, QueueVisit]:
    visit = QueueVisit("general", JOINED.isoformat(), (JOINED + timedelta(seconds=wait)).isoformat(), outcome, wait,
                       "agent1001" if outcome == "answered" else "")
    t = Ticket(linkedid=linkedid, line="12345", caller="13900000001", received=(JOINED - timedelta(seconds=20)).isoformat(),
               queue="general", queued=visit.joined, queue_visits=[visit])
    return t, visit


def write_visit(store: TicketStore, linkedid: str, wait: float, outcome: str = "answered") -> None:
    t, visit = call(linkedid, wait, outcome)
    store.write_visit_nowait(linkedid, "queue:general:1", kpi.visit_increments(t, visit, final=True, keep_days=400))


async def general(store: TicketStore) -> dict[str, object]:
    report = await store.kpi_report(kpi.window("test", JOINED - timedelta(minutes=5), NOW, NOW))
    assert report["lines"]["12345"]["offered"] == report["queues"]["general"]["offered"]  # one visit, one call
    return dict(report["queues"]["general"])


async def test_given_visits_then_their_buckets_count_them_and_expire_and_no_ticket_event_is_streamed(
    tickets: TicketStore,
) -> None:
    t, _visit = call("1.1", 4.0)
    await tickets.write(t, "opened")
    write_visit(tickets, "1.1", 4.0)
    write_visit(tickets, "1.2", 20.0)
    write_visit(tickets, "1.3", 3.0, "abandoned")
    await tickets.drain()
    g = await general(tickets)
    assert (g["offered"], g["answered"], g["answered_15"], g["answered_30"], g["abandoned"], g["abandoned_5"]) == (
        3, 2, 1, 2, 1, 1)
    assert (g["wait_ms"], g["answer_wait_ms"], g["max_wait_ms"], g["longest_wait_s"]) == (27000, 24000, 20000, 20.0)
    assert await tickets.phases("1.1") == {"opened", "queue:general:1"}
    assert (await tickets.get("1.1")) is not None  # the visit's write left the opened doc alone
    assert [f["event"] for _id, f in await tickets.redis.xrange(keyspace.TICKET_EVENTS)] == ["opened"]
    [fine, day] = kpi.visit_increments(*call("1.1", 4.0), final=True, keep_days=400)[0].buckets
    for bucket in (fine, day):
        key = keyspace.kpi_bucket("queue", "general", bucket.label)
        assert await tickets.redis.expiretime(key) == bucket.expire_at  # type: ignore[attr-defined]
    assert await tickets.redis.smembers(keyspace.KPI_DIMENSIONS) == {"queue:general", "line:12345"}


async def test_given_a_visit_written_again_or_by_a_second_engine_then_it_counts_once(
    redis_url: str, tmp_path: Path, tickets: TicketStore,
) -> None:
    other = TicketStore(redis_url, tmp_path / "other", name="server-2", retention_days=30, caller_key=KEY)
    try:
        write_visit(tickets, "2.1", 4.0)
        write_visit(other, "2.1", 4.0)  # the second engine following the same Asterisk
        write_visit(tickets, "2.1", 4.0)
        await tickets.drain()
        await other.drain()
    finally:
        await other.close()
    g = await general(tickets)
    assert (g["offered"], g["answered"], g["wait_ms"]) == (1, 1, 4000)


@pytest.fixture
def late_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], object]]]:
    """A Redis URL where nothing listens yet, and how to start it there."""
    port, started = PortAllocator().one(), []
    yield f"redis://127.0.0.1:{port}/0", lambda: started.append(start_redis(port, tmp_path))
    for proc in started:
        proc.kill()
        proc.wait()


async def test_given_redis_down_when_visits_end_then_they_count_once_when_it_is_back_even_replayed_twice(
    tmp_path: Path, late_redis: tuple[str, Callable[[], object]],
) -> None:
    url, start = late_redis
    spool = tmp_path / "spool"
    store = TicketStore(url, spool, name="server-1", retention_days=30, timeout=0.3, caller_key=KEY)
    try:
        write_visit(store, "3.1", 4.0)
        write_visit(store, "3.2", 40.0, "abandoned")
        await store.drain()  # nobody there: journaled only
        journal = store.journal.read_text()
        assert journal.count("\n") == 2
        start()
        assert await store.flush_spool() == 2
        # a writer that died between its commit and removing its journal: replayed by a flusher
        (spool / "tickets-dead.1.0000.jsonl").write_text(journal)
        assert await store.flush_spool() == 0
        g = await general(store)
        assert (g["offered"], g["answered"], g["abandoned"], g["abandoned_5"], g["max_wait_ms"]) == (2, 1, 1, 0, 40000)
    finally:
        await store.close()


async def test_given_a_bucket_key_of_another_type_then_tickets_and_other_buckets_still_go_through(
    tickets: TicketStore,
) -> None:
    t, visit = call("4.1", 4.0)
    [queue_inc, _line] = kpi.visit_increments(t, visit, final=True, keep_days=400)
    await tickets.redis.set(keyspace.kpi_bucket("queue", "general", queue_inc.buckets[0].label), "an admin's mistake")
    write_visit(tickets, "4.1", 4.0)
    await tickets.write(call("4.2", 1.0)[0], "opened")
    await tickets.drain()
    assert await tickets.phases("4.1") == {"queue:general:1"} and await tickets.phases("4.2") == {"opened"}
    report = await tickets.kpi_report(kpi.window("test", JOINED - timedelta(minutes=5), NOW, NOW))
    assert report["lines"]["12345"]["offered"] == 1 and "general" not in report["queues"]
