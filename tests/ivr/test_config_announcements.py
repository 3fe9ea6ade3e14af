"""Reload and status cluster-wide, on a real redis-server: an engine that reloads announces its
version, the others follow (or say why not), an engine that starts later catches up, a dead
engine's status expires, and `ivr reload --status`'s report tells whether all run the version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from console.engine_status import EngineTable, engine_table
from ivr.cluster_reload import ClusterReload
from ivr.commands.reload import report
from ivr.hot_reload import ReloadResult
from ivr.store import keyspace, redis_client
from ivr.store.engines import Announcement, EngineRegistry, out_of_step
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from testbed.ports import PortAllocator
from testbed.processes import start_redis

OLD, NEW = "aaaaaaaaaaaa-20261206T080000Z", "bbbbbbbbbbbb-20261206T090000Z"


class Engine:
    """An engine's reload path as ivr/service.py wires it: ``files`` is what its config/ compiles
    to now (None: refused), ``live`` what it runs."""

    def __init__(self, registry: EngineRegistry, name: str, live: str = OLD):
        self.live, self.files, self.reloads = live, live, 0
        self.cluster = ClusterReload(registry, name, lambda: self.live, lambda: self.reload(announce=False),
                                     leases=lambda: ("ami-follower",) if name.endswith(":1") else (),
                                     heartbeat=0.2)

    async def reload(self, announce: bool = True) -> ReloadResult:
        self.reloads += 1
        if self.files is None:
            result = ReloadResult(False, self.live, ("config/flows/sample.yaml:3:5: unknown key 'colour'",))
        else:
            self.live = self.files[:13] + f"2026120{self.reloads}T100000Z"  # same content, its own compile time
            result = ReloadResult(True, self.live)
        await self.cluster.reloaded(result, announce)
        return result


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


async def until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "state not reached in time"
        await asyncio.sleep(0.02)


async def test_given_one_engine_reloads_then_the_others_reload_and_confirm_its_announcement(redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis)
    a, b = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    for e in (a, b):
        await e.cluster.catch_up()
        await e.cluster.publish()
    a.files = b.files = NEW  # the console wrote config/ (shared by the node's engines)

    await a.reload()
    assert b.reloads == 0
    wanted = await b.cluster.catch_up()

    assert wanted is not None and wanted.origin == "node1:4573:1" and wanted.content == "bbbbbbbbbbbb"
    assert (a.reloads, b.reloads) == (1, 1)
    statuses = await registry.statuses()
    assert [st["seq"] for st in statuses.values()] == [str(wanted.seq)] * 2
    assert {st["version"][:12] for st in statuses.values()} == {"bbbbbbbbbbbb"}
    assert out_of_step(wanted, statuses) == {}
    assert await a.cluster.catch_up() is None and a.reloads == 1  # its own announcement: nothing to do


async def test_given_an_engine_that_refuses_or_runs_other_files_then_it_is_reported_out_of_step(
        redis: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    registry = EngineRegistry(redis)
    a, refusing, elsewhere, late = (Engine(registry, f"node{i}:4573:{i}") for i in range(1, 5))
    a.files, refusing.files, elsewhere.files = NEW, None, "cccccccccccc-x"
    await a.reload()
    await late.cluster.publish()  # up, but has not read the announcement yet
    for e in (refusing, elsewhere):
        await e.cluster.catch_up()

    behind = out_of_step(await registry.wanted(), await registry.statuses())

    assert behind == {"node2:4573:2": ("refused", OLD), "node3:4573:3": ("other", elsewhere.live),
                      "node4:4573:4": ("unconfirmed", OLD)}
    assert await report(registry) == 1
    out = capsys.readouterr().out
    assert f"node2:4573:2: refused the reload, runs {OLD}" in out
    assert f"node3:4573:3: runs other files: {elsewhere.live}" in out
    status = await registry.status("node2:4573:2")
    assert (status["last_reload"], status["version"]) == ("refused", OLD)
    assert "sample.yaml:3:5" in status["errors"]


async def test_given_an_engine_down_during_the_announcement_when_it_starts_then_it_catches_up(redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis)
    a = Engine(registry, "node1:4573:1")
    a.files = NEW
    await a.reload()
    started = Engine(registry, "node1:4574:3", live=OLD)  # its config/ is still the old one here
    started.files = NEW  # ... until the files are deployed: then it reloads on start

    assert await started.cluster.catch_up() == await registry.wanted()
    assert started.reloads == 1 and started.live.startswith("bbbbbbbbbbbb")
    fresh = Engine(registry, "node1:4575:4", live=NEW)  # compiled the new files as it started
    await fresh.cluster.catch_up()
    assert fresh.reloads == 0 and (await registry.status("node1:4575:4"))["seq"] == "1"


async def test_given_a_running_engine_then_it_hears_an_announcement_and_renews_its_status_until_it_leaves(
        redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis, ttl=1.0)
    a, b = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    a.files = b.files = NEW
    follower = asyncio.create_task(b.cluster.run())
    try:
        await until(lambda: registry.statuses())
        beat = (await registry.status("node1:4574:2"))["heartbeat"]
        await until(lambda: _changed(registry, "node1:4574:2", "heartbeat", beat))
        await a.reload()
        await until(lambda: _at_least(lambda: b.reloads, 1))
        await until(lambda: _changed(registry, "node1:4574:2", "seq", "0"))
        assert (await registry.status("node1:4574:2"))["leases"] == ""
        assert (await registry.status("node1:4573:1"))["leases"] == "ami-follower"
    finally:
        follower.cancel()
    await until(lambda: _gone(registry, "node1:4573:1"))  # a stopped heartbeat: the status expires
    await b.cluster.leave()
    assert await registry.statuses() == {}


async def _changed(registry: EngineRegistry, name: str, field: str, old: str) -> bool:
    return (await registry.status(name)).get(field, old) != old


async def _at_least(value, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(value() >= n)


async def _answers(check) -> bool:  # type: ignore[no-untyped-def]
    """A check that counts a refused connection (the test's own client after a restart) as not yet."""
    try:
        return bool(await check)
    except RedisError:
        return False


async def _gone(registry: EngineRegistry, name: str) -> bool:
    return name not in await registry.statuses() and not await registry.status(name)


async def test_given_a_failover_that_lost_the_last_announcement_then_a_repeated_number_still_counts(
        redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis)
    a, b = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    a.files = b.files = NEW
    await a.reload()
    await b.cluster.catch_up()
    await redis.delete(keyspace.CONFIG_SEQ, keyspace.CONFIG_WANTED)  # the new master never had them
    a.files = b.files = "dddddddddddd-x"

    again = await a.cluster.registry.announce((await a.reload(announce=False)).version, "node1:4573:1")
    assert again.seq == 1 and await b.cluster.catch_up() == again
    assert b.live.startswith("dddddddddddd") and b.reloads == 2


async def test_given_two_announcements_then_the_last_one_is_wanted_under_a_higher_number(redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis)
    assert await registry.wanted() is None
    first = await registry.announce(OLD, "node1:4573:1")
    second = await registry.announce(NEW, "node1:4574:2")
    assert second.seq == first.seq + 1
    assert await registry.wanted() == Announcement(second.seq, NEW, "node1:4574:2", second.at)


async def test_the_status_report_lists_each_engine_and_says_whether_all_run_the_announced_version(
        redis: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    registry = EngineRegistry(redis)
    a, b = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    assert await report(registry) == 0 and "no version announced yet; 0 engine(s) live" in capsys.readouterr().out
    a.files = b.files = NEW
    await a.reload()
    await b.cluster.publish()

    assert await report(registry) == 1
    out = capsys.readouterr().out
    assert "NOT all engines run the announced version bbbbbbbbbbbb" in out
    assert "node1:4574:2: has not confirmed announcement 1 yet" in out

    await b.cluster.catch_up()
    assert await report(registry) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ENGINE", "VERSION", "LAST", "RELOAD", "HEARTBEAT", "LEASES"]
    assert lines[1].startswith("node1:4573:1") and a.live in lines[1] and lines[1].endswith("ami-follower")
    assert lines[2].startswith("node1:4574:2") and b.live in lines[2] and " ok " in lines[2]
    assert lines[3] == "all 2 engine(s) run the announced version bbbbbbbbbbbb (announcement 1 by node1:4573:1)"


async def test_the_console_table_says_in_mandarin_which_engine_lags_and_why(redis: aioredis.Redis) -> None:
    registry = EngineRegistry(redis)
    a, refusing = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    assert await engine_table(redis) == EngineTable([], "", True)
    a.files, refusing.files = NEW, None
    await a.reload()
    await refusing.cluster.catch_up()

    table = await engine_table(redis)

    assert table is not None and (table.wanted, table.in_step) == ("bbbbbbbbbbbb", False)
    assert [(r.name, r.lag, r.leases) for r in table.rows] == [("node1:4573:1", "", "ami-follower"),
                                                               ("node1:4574:2", "加载被拒绝，仍运行旧版本", "—")]
    assert table.rows[1].reload.startswith("被拒绝 ") and table.rows[0].heartbeat.endswith(" 秒前")


async def test_given_redis_restarts_then_a_running_engine_subscribes_again_and_hears_the_next_announcement(
        tmp_path: Path) -> None:
    port = PortAllocator().one()
    server = start_redis(port, tmp_path)
    client = redis_client(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    registry = EngineRegistry(client)
    a, b = Engine(registry, "node1:4573:1"), Engine(registry, "node1:4574:2")
    follower = asyncio.create_task(b.cluster.run())
    try:
        await until(lambda: _changed(registry, "node1:4574:2", "version", ""))
        server.kill()
        server.wait()
        server = start_redis(port, tmp_path)  # empty, as a promoted replica that missed everything
        a.files = b.files = NEW
        await until(lambda: _answers(_changed(registry, "node1:4574:2", "version", "")))  # b's heartbeat is back
        await a.reload()
        await until(lambda: _at_least(lambda: b.reloads, 1))
        assert b.live.startswith("bbbbbbbbbbbb")
    finally:
        follower.cancel()
        await client.aclose()
        server.kill()
        server.wait()


async def test_given_an_engines_latency_then_its_heartbeat_writes_it_with_the_status_each_time(redis: aioredis.Redis) -> None:
    registry, beats = EngineRegistry(redis), [0]

    def latency() -> dict[str, str]:  # one write a heartbeat carries the whole status (no writer of its own)
        beats[0] += 1
        return {"latency": f'{{"beat": {beats[0]}}}'}

    cluster = ClusterReload(registry, "node1:4573:1", lambda: OLD, lambda: asyncio.sleep(0, ReloadResult(True, OLD)),
                            heartbeat=0.05, extra=latency)
    beating = asyncio.create_task(cluster.run())
    try:
        async def written_twice() -> bool:
            status = await registry.status("node1:4573:1")
            return status.get("version") == OLD and status.get("latency", "").startswith('{"beat": ') and \
                int(status["latency"][9:-1]) >= 2
        await until(written_twice)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
