"""The record store against a real redis-server: spooling, replay, damaged spool lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from ivr.store import CALL_STREAM, CallStore
from ivr.testbed.ports import PortAllocator
from ivr.testbed.processes import wait_port


def free_port() -> int:
    """Below the ephemeral range: a client retrying a dead port must not self-connect to it."""
    return PortAllocator().one()


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on ``port``, ready when this returns."""
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    assert wait_port(port, 10, proc), "redis-server did not start"
    return proc


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture
async def store(redis_url: str, tmp_path: Path) -> AsyncIterator[CallStore]:
    s = CallStore(redis_url, tmp_path / "spool", name="server-1", timeout=0.5)
    yield s
    await s.close()


def record(n: int) -> dict[str, object]:
    return {"unique_id": f"u{n}", "caller": "13900000000", "keys": [str(n)]}


async def stream_ids(store: CallStore) -> list[str]:
    return [json.loads(f["record"])["unique_id"] for _id, f in await store.redis.xrange(CALL_STREAM)]


async def test_records_reach_redis(store: CallStore) -> None:
    await store.save_call(record(1))
    assert await stream_ids(store) == ["u1"]
    assert json.loads(await store.redis.get("ivr:call:u1"))["keys"] == ["1"]


async def test_a_damaged_line_in_any_spool_file_is_set_aside_and_the_rest_replayed(store: CallStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "calls-server-1.jsonl").write_text(json.dumps(record(1)) + "\n" + '{"unique_id": "u2", "cal')
    (spool / "calls-process-77.jsonl").write_text(json.dumps(record(3)) + "\n")

    assert await store.flush_spool() >= 2

    assert await stream_ids(store) == ["u1", "u3"]
    assert (spool / "calls.bad").read_text().startswith('{"unique_id": "u2"')
    assert sorted(p.name for p in spool.iterdir()) == ["calls.bad"]


async def test_while_redis_is_down_records_spool_in_order_and_replay_when_it_returns(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    s = CallStore(f"redis://127.0.0.1:{port}/0", tmp_path / "spool", name="server-1", timeout=0.3)
    for n in (1, 2, 3):
        await s.save_call(record(n))
    lines = (tmp_path / "spool" / "calls-server-1.jsonl").read_text().splitlines()
    assert [json.loads(ln)["unique_id"] for ln in lines] == ["u1", "u2", "u3"]
    await s.close()
    proc = start_redis(port, tmp_path)
    try:
        s = CallStore(f"redis://127.0.0.1:{port}/0", tmp_path / "spool", name="server-1", timeout=0.5)
        assert await s.flush_spool() == 3
        await s.save_call(record(4))
        assert await stream_ids(s) == ["u1", "u2", "u3", "u4"]
        assert not (tmp_path / "spool" / "calls-server-1.jsonl").exists()
        await s.close()
    finally:
        proc.kill()
        proc.wait()
