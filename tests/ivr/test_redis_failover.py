"""The one Redis client factory with a URL and with a Sentinel service (ivr/store/failover.py), on
real redis-server and Sentinel processes: a client follows the master across a SIGKILL, a write
counts only once a replica confirms it, and a journaled ticket waits on disk until one does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, cast

import pytest
import redis
from aiohttp import web
from pydantic import SecretStr

from ivr.config import RedisSettings, Settings, TicketSettings, Webhook, webhook_secret_variable
from ivr.store import confirm, keyspace, redis_client, where
from ivr.store.failover import NotReplicated
from testbed.calls import until
from testbed.ports import PortAllocator
from testbed.processes import stop_group
from testbed.sentinel import SERVICE, start_data_node, start_sentinel
from tickets.model import Ticket
from tickets.store import TicketStore
from tickets.webhooks import PushWorker


@dataclass
class Group:
    """A master, two replicas (a promoted one keeps one: ``min-replicas-to-write 1``) and two
    sentinels (quorum 2) on loopback."""

    master: int
    replica: int
    spare: int
    sentinels: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def settings(self, **extra: Any) -> RedisSettings:
        return RedisSettings(sentinel_service=SERVICE, sentinels=tuple(f"127.0.0.1:{p}" for p in self.sentinels),
                             **extra)

    def named_master(self) -> int:
        client = redis.Redis(port=self.sentinels[0], socket_timeout=1, decode_responses=True)
        try:
            return int(cast(tuple[str, int], client.sentinel_get_master_addr_by_name(SERVICE))[1])
        finally:
            client.close()


def _ticket(linkedid: str) -> Ticket:
    return Ticket(linkedid=linkedid, line="12345", caller="13900000001", received="2026-12-01T09:30:00+08:00")


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    ports = PortAllocator()
    g = Group(ports.one(), ports.one(), ports.one(), [ports.one(), ports.one()])
    g.procs[g.master] = start_data_node(g.master, tmp_path / "master")
    for replica in (g.replica, g.spare):
        g.procs[replica] = start_data_node(replica, tmp_path / f"replica-{replica}", replica_of=g.master)
    for p in g.sentinels:
        g.procs[p] = start_sentinel(p, g.master, tmp_path / f"sentinel-{p}")

    def ready() -> bool:
        """Each sentinel can authorise a failover (CKQUORUM raises if not) and knows both replicas."""
        asks = [redis.Redis(port=p, socket_timeout=1) for p in g.sentinels]
        try:
            return all(a.execute_command("SENTINEL", "CKQUORUM", SERVICE)
                       and len(a.execute_command("SENTINEL", "REPLICAS", SERVICE)) == 2 for a in asks)
        finally:
            for a in asks:
                a.close()

    _wait(ready, 20, "the sentinels know each other and the replicas")
    yield g
    for proc in g.procs.values():
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        stop_group(proc.pid, timeout=3)


async def test_a_url_and_the_settings_url_reach_the_same_redis(redis_url: str) -> None:
    plain = redis_client(redis_url)
    await plain.set("k", "v")
    await plain.config_set("requirepass", "s3cret-pw")  # the settings' password (IVR_REDIS_PASSWORD) is used
    await plain.aclose()
    through = redis_client(RedisSettings(url=redis_url, password=SecretStr("s3cret-pw")))
    assert await through.get("k") == "v"
    await through.aclose()
    refused = redis_client(redis_url)
    with pytest.raises(redis.AuthenticationError):
        await refused.get("k")
    await refused.aclose()


def test_where_names_redis_without_a_password() -> None:
    assert where("redis://:pw@db.example:6380/0") == "db.example:6380"
    assert where(RedisSettings(url="redis://:pw@db.example/1")) == "db.example:6379"
    named = where(RedisSettings(sentinel_service="ivr", sentinels=("10.0.0.1:26379", "10.0.0.2:26379"),
                                password=SecretStr("pw")))
    assert named == "Sentinel service ivr (10.0.0.1:26379, 10.0.0.2:26379)"


async def test_a_lone_redis_cannot_confirm_a_write_to_a_replica(redis_url: str) -> None:
    client = redis_client(redis_url)
    await confirm(client, 0, 50)  # nothing asked: nothing waited for
    with pytest.raises(NotReplicated):
        await confirm(client, 1, 50)
    await client.aclose()


async def test_the_client_follows_the_master_across_a_sigkill(group: Group) -> None:
    client = redis_client(group.settings(failover_s=30), timeout=1.0)
    await client.set("before", "1")
    await confirm(client, 1, 2000)  # on the replica too
    group.procs[group.master].kill()
    # issued while the sentinels still name the dead master: retried until the replica is promoted
    await client.set("after", "2")
    promoted = group.named_master()
    assert promoted in (group.replica, group.spare)
    assert (await client.mget("before", "after")) == ["1", "2"]
    direct = redis.Redis(port=promoted, decode_responses=True)
    assert direct.info("replication")["role"] == "master" and direct.get("after") == "2"
    direct.close()
    await client.aclose()


async def test_a_ticket_stays_journaled_until_a_replica_confirms_it(group: Group, tmp_path: Path) -> None:
    settings = group.settings(confirm_timeout_ms=200)
    store = TicketStore(settings, tmp_path / "spool", "engine", retention_days=1, caller_key=b"k" * 32)
    confirmed = _ticket("1700000000.1")
    await store.write(confirmed, "opened")
    await store.drain()
    assert not store.journal_only and not store.journal.exists()

    replicas = [group.procs[group.replica].pid, group.procs[group.spare].pid]
    for pid in replicas:
        os.kill(pid, signal.SIGSTOP)  # the replicas take nothing in
    try:
        waiting = _ticket("1700000000.2")
        await store.write(waiting, "opened")
        await store.drain()
        # the master took it, no replica confirmed it: the journal keeps it (and push would not send it)
        assert store.journal_only
        assert b"1700000000.2" in store.journal.read_bytes()
    finally:
        for pid in replicas:
            os.kill(pid, signal.SIGCONT)
    assert await store.flush_spool() == 0  # replayed: already there, now confirmed
    assert not store.journal_only and not store.journal.exists()
    first, second = await store.get("1700000000.1"), await store.get("1700000000.2")
    assert first is not None and second is not None
    assert first.number != second.number and first.number.endswith("00001") and second.number.endswith("00002")
    await store.close()


async def test_push_sends_an_event_only_once_a_replica_holds_it(group: Group, caplog: pytest.LogCaptureFixture) -> None:
    """A ticket event a master took but no replica holds may die with the master, and its number
    be given again by the promoted replica: the department must not have seen it."""
    posts: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        posts.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    redis_settings = group.settings(confirm_timeout_ms=200)
    settings = Settings(redis=redis_settings,
                        tickets=TicketSettings(webhooks={"city": Webhook(url=f"http://{host}:{port}/hook", timeout=1.0)}))
    worker = PushWorker(redis_settings, settings, "engine-1", environ={webhook_secret_variable("city"): "dept-key-for-the-tests"},
                        claim_idle=2.0, poll=0.2)
    task = asyncio.create_task(worker.run())
    client = redis_client(redis_settings)
    replicas = [group.procs[group.replica].pid, group.procs[group.spare].pid]
    try:
        for pid in replicas:
            os.kill(pid, signal.SIGSTOP)
        ticket = _ticket("1700000000.3")
        with caplog.at_level(logging.WARNING, "ivr.push"):
            await client.xadd(keyspace.TICKET_EVENTS, {"event": "opened", "linkedid": ticket.linkedid, "line": "12345",
                                                       "number": "20261201-12345-00003",
                                                       "ticket": json.dumps(ticket.to_json(), ensure_ascii=False)})
            await until(lambda: "replica(s) confirmed" in caplog.text, 10)
        assert posts == []  # read from the master, held back
        for pid in replicas:
            os.kill(pid, signal.SIGCONT)
        await until(lambda: len(posts) == 1, 15)  # taken up again once confirmed
        assert json.loads(posts[0])["number"] == "20261201-12345-00003"
    finally:
        for pid in replicas:
            os.kill(pid, signal.SIGCONT)
        await worker.stop(grace=1.0)
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        await runner.cleanup()
