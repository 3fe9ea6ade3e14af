"""The record store against a real redis-server: journal first, group commit, replay after an
outage or a dead writer, damaged journal lines."""

from __future__ import annotations

import asyncio
import fcntl
import json
from pathlib import Path
from typing import AsyncIterator

import pytest

import ivr.store.journal as store_module
from ivr.store import keyspace
from ivr.store.keyspace import CALL_STREAM
from ivr.store import CallStore
from testbed.calls import until
from testbed.ports import PortAllocator
from testbed.processes import start_redis








@pytest.fixture
async def store(redis_url: str, tmp_path: Path) -> AsyncIterator[CallStore]:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", timeout=0.5)
    yield s
    await s.close()


def record(n: int) -> dict[str, object]:
    return {"unique_id": f"u{n}", "caller": "13900000000", "keys": [str(n)]}


async def stream_ids(store: CallStore) -> list[str]:
    return [json.loads(f["record"])["unique_id"] for _id, f in await store.redis.xrange(CALL_STREAM)]


async def assert_stored_and_spool_empty(redis_url: str, spool: Path, ids: list[str]) -> None:
    """Seen by a fresh store, as the next engine would: Redis has them, nothing waits on disk."""
    s = CallStore(redis_url, spool, name="check")
    try:
        assert await stream_ids(s) == ids
        assert list(spool.iterdir()) == []
    finally:
        await s.close()


async def test_records_reach_redis_and_the_journal_goes(store: CallStore) -> None:
    await store.save_call(record(1))
    assert store.journal.read_text().count("\n") == 1  # on disk before Redis is asked
    await store.drain()
    assert await stream_ids(store) == ["u1"]
    assert json.loads(await store.redis.get(keyspace.call("u1")))["keys"] == ["1"]
    assert not store.journal.exists()


def count_batches(s: CallStore) -> list[int]:
    """The size of every batch ``s`` sends to Redis from now on."""
    batches: list[int] = []
    write = s._write

    async def counted(batch: list[tuple[str, str]]) -> int | None:
        batches.append(len(batch))
        return await write(batch)

    s._write = counted  # type: ignore[method-assign]
    return batches


async def test_records_of_one_window_share_one_round_trip(redis_url: str, tmp_path: Path) -> None:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=0.2)
    batches = count_batches(s)
    try:
        for n in range(1, 6):
            await s.save_call(record(n))
        assert await stream_ids(s) == []  # still inside the window
        await s.drain()
        assert await stream_ids(s) == ["u1", "u2", "u3", "u4", "u5"]
        assert batches == [5]
    finally:
        await s.close()


async def test_a_long_backlog_goes_in_bounded_batches_in_order(store: CallStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_BATCH", 2)
    batches = count_batches(store)
    for n in range(1, 6):
        await store.save_call(record(n))
    await store.drain()
    assert batches == [2, 2, 1]
    assert await stream_ids(store) == ["u1", "u2", "u3", "u4", "u5"]
    assert not store.journal.exists()


async def test_the_writer_commits_by_itself_after_the_window(redis_url: str, tmp_path: Path) -> None:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=0.05)
    try:
        await s.save_call(record(1))
        await until(lambda: stream_ids(s), timeout=5)
        await until(lambda: not s.journal.exists(), timeout=5)
    finally:
        await s.close()


async def test_a_replayed_record_already_in_redis_is_not_streamed_twice(store: CallStore, tmp_path: Path) -> None:
    await store.save_call(record(1))
    await store.drain()
    # a writer that died after its write but before removing its journal
    (tmp_path / "spool" / "calls-server-9.999999999.jsonl").write_text(
        json.dumps(record(1), ensure_ascii=False) + "\n" + json.dumps(record(2), ensure_ascii=False) + "\n")
    assert await store.flush_spool() == 1
    assert await stream_ids(store) == ["u1", "u2"]


async def test_a_damaged_line_in_any_journal_is_set_aside_and_the_rest_replayed(store: CallStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "calls-server-1.jsonl").write_text(json.dumps(record(1)) + "\n" + '{"unique_id": "u2", "cal')
    (spool / "calls-process.999999999.jsonl").write_text(json.dumps(record(3)) + "\n")
    assert await store.flush_spool() == 2
    assert sorted(await stream_ids(store)) == ["u1", "u3"]
    assert (spool / "calls.bad").read_text().startswith('{"unique_id": "u2"')
    assert sorted(p.name for p in spool.iterdir()) == ["calls.bad"]


async def test_the_journal_of_a_live_writer_is_left_to_it(store: CallStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    live = spool / "calls-process.4242.0badcafe.jsonl"  # a process-AGI call still running
    live.write_text(json.dumps(record(7)) + "\n")
    with open(live) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a live writer holds
        assert await store.flush_spool() == 0
        assert live.exists() and await stream_ids(store) == []
    assert await store.flush_spool() == 1  # its writer is gone now
    assert await stream_ids(store) == ["u7"]


async def test_a_fresh_empty_journal_is_not_claimed(store: CallStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "calls-process.4243.0badcafe.jsonl").touch()  # a writer between create and lock
    assert await store.flush_spool() == 0
    assert (spool / "calls-process.4243.0badcafe.jsonl").exists()


async def test_a_claim_left_by_a_dead_flusher_is_replayed(store: CallStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "calls-server-2.999999998.jsonl.999999999.replaying").write_text(json.dumps(record(5)) + "\n")
    assert await store.flush_spool() == 1
    assert await stream_ids(store) == ["u5"]
    assert list(spool.iterdir()) == []


async def test_while_redis_is_down_records_wait_in_the_journal_and_replay_in_order(tmp_path: Path) -> None:
    port = PortAllocator().one()  # nothing listens here yet
    s = CallStore(f"redis://127.0.0.1:{port}/0", tmp_path / "spool", name="server-1", timeout=0.3)
    await s.save_call(record(1))
    await s.drain()  # Redis refuses: from now on records queue behind it on disk
    for n in (2, 3):
        await s.save_call(record(n))
    lines = s.journal.read_text().splitlines()
    assert [json.loads(ln)["unique_id"] for ln in lines] == ["u1", "u2", "u3"]
    proc = start_redis(port, tmp_path)
    try:
        await s.save_call(record(4))  # Redis is back, but u4 must not overtake u1..u3
        assert await stream_ids(s) == []
        assert await s.flush_spool() == 4
        await s.save_call(record(5))
        await s.drain()
        assert await stream_ids(s) == ["u1", "u2", "u3", "u4", "u5"]
        assert not s.journal.exists()
    finally:
        await s.close()
        proc.kill()
        proc.wait()


async def test_two_writers_never_share_a_journal(redis_url: str, tmp_path: Path) -> None:
    a = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=60)
    b = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=60)  # same name, same pid
    try:
        assert a.journal != b.journal
        await a.save_call(record(1))
        await b.save_call(record(2))
        assert await b.flush_spool() == 0  # a's journal is locked by a, its writer
        assert a.journal.exists()
    finally:
        await a.close()
        await b.close()


async def test_a_write_cancelled_at_shutdown_keeps_its_records(redis_url: str, tmp_path: Path) -> None:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=60)
    write = s._write
    started = asyncio.Event()

    async def stuck(batch: list[tuple[str, str]]) -> int | None:
        started.set()
        await asyncio.sleep(60)
        return await write(batch)

    s._write = stuck  # type: ignore[method-assign]
    await s.save_call(record(1))
    task = asyncio.create_task(s.drain())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    s._write = write  # type: ignore[method-assign]
    await s.close()  # writes what is still due, then removes the journal
    await assert_stored_and_spool_empty(redis_url, tmp_path / "spool", ["u1"])


async def test_a_record_redis_refuses_is_set_aside_and_the_rest_go_on(store: CallStore, tmp_path: Path) -> None:
    await store.redis.lpush(keyspace.call("u2"), "not a string key")  # an admin's mistake
    for n in (1, 2, 3):
        await store.save_call(record(n))
    await store.drain()
    assert await stream_ids(store) == ["u1", "u3"]
    assert json.loads((tmp_path / "spool" / "calls.bad").read_text())["unique_id"] == "u2"
    assert not store.journal.exists()
    await store.save_call(record(4))  # the store did not stop at the bad key
    await store.drain()
    assert await stream_ids(store) == ["u1", "u3", "u4"]


async def test_close_writes_what_is_queued(redis_url: str, tmp_path: Path) -> None:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", flush_delay=60)
    await s.save_call(record(1))
    await s.close()
    await assert_stored_and_spool_empty(redis_url, tmp_path / "spool", ["u1"])


async def test_when_redis_refuses_every_write_the_records_wait_in_the_journal(store: CallStore, tmp_path: Path) -> None:
    """Out of memory (or read-only, or not saving): Redis answers but takes nothing."""
    await store.redis.config_set("maxmemory-policy", "noeviction")
    await store.redis.config_set("maxmemory", "1")
    try:
        await store.save_call(record(1))
        await store.drain()
        assert store.journal.exists() and not (tmp_path / "spool" / "calls.bad").exists()
    finally:
        await store.redis.config_set("maxmemory", "0")
    assert await store.flush_spool() == 1
    assert await stream_ids(store) == ["u1"]


async def test_a_stream_key_of_another_type_holds_records_back_without_losing_them(store: CallStore, tmp_path: Path) -> None:
    await store.redis.set(CALL_STREAM, "an admin's mistake")
    await store.save_call(record(1))
    await store.drain()
    assert store.journal.exists() and not (tmp_path / "spool" / "calls.bad").exists()
    assert await store.redis.get(keyspace.call("u1")) is None  # nothing half-written
    await store.redis.delete(CALL_STREAM)
    assert await store.flush_spool() == 1
    assert await stream_ids(store) == ["u1"]


async def test_records_still_land_after_redis_forgot_the_script(store: CallStore) -> None:
    """The script is sent by its SHA; a restarted Redis (empty script cache) is sent it again."""
    await store.save_call(record(1))
    await store.drain()
    await store.redis.script_flush()
    await store.save_call(record(2))
    await store.drain()
    assert await stream_ids(store) == ["u1", "u2"]
    assert not store.journal.exists()
