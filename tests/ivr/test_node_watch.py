"""The node-gone duty (ivr/node_watch.py) against a real Redis, the AMI probe against real sockets:
a node is gone only when its AMI stays silent for ``node_dead_after_s`` and nobody follows it;
then its open tickets are closed once, under its follow lease taken from a holder that does not
follow, and the waiting callers get one callback each (numbers checked as every callback's)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from ivr.callback import CallbackWorker
from ivr.config import Settings, load_config
from ivr.config.cluster import ClusterSettings, Node
from ivr.node_watch import FOLLOW_FRESH, NodeWatch, answers
from ivr.store import keyspace, redis_client
from ivr.store.lease import Lease
from queues.agents import Membership, Seat
from queues.callback import CallbackSettings, NodeLossCallbacks
from queues.store import SeatStore
from queues.waiting import Waiting
from testbed.ports import PortAllocator
from tickets.model import Ticket
from tickets.store import TicketStore

from ami_recorder import RecordingAmi

REPO = Path(__file__).resolve().parents[2]
KEY = b"node-watch-test-caller-key-01"
AMI_A, AMI_B = "127.0.0.1:15038", "127.0.0.1:15039"
DEAD_AFTER = 5.0


def cluster_settings(delay: int = 0) -> Settings:
    base = load_config(REPO / "config", environ={}).settings
    nodes = {"ast-a": Node(sip="127.0.0.1:15060", ami=AMI_A, rtp_start=10000, rtp_end=10999),
             "ast-b": Node(sip="127.0.0.1:15061", ami=AMI_B, rtp_start=11000, rtp_end=11999)}
    return base.model_copy(update={"cluster": ClusterSettings(nodes=nodes, node_dead_after_s=DEAD_AFTER),
                                   "callbacks": CallbackSettings(node_loss=NodeLossCallbacks(delay=delay))})


class Nodes:
    """Which nodes' AMI answers (the probe the watch is given; the real one is tested below)."""

    def __init__(self) -> None:
        self.up = {AMI_A: True, AMI_B: True}

    async def probe(self, host: str, port: int) -> bool:
        return self.up[f"{host}:{port}"]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = redis_client(redis_url, timeout=1.0)
    yield client
    await client.aclose()


@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    store = TicketStore(redis_url, tmp_path / "spool", name="watch", retention_days=1, caller_key=KEY)
    yield store
    await store.close()


async def open_call(store: TicketStore, linkedid: str, caller: str) -> Ticket:
    t = Ticket(linkedid=linkedid, line="12345", caller=caller,
               received=datetime.fromtimestamp(time.time() - 60).astimezone().isoformat(timespec="milliseconds"))
    store.write_nowait(t, "opened")
    await store.drain()
    return t


async def waiting(redis: Any, linkedid: str, ami: str, joined: float) -> None:
    await redis.hset(keyspace.QUEUE_WAITING, linkedid, json.dumps(Waiting(linkedid, "general", "12345", joined, ami).to_json()))


async def closed_phases(redis: Any, linkedid: str) -> int:
    """How many ``closed`` events the ticket's stream holds (each new phase write adds one)."""
    entries = await redis.xrange(keyspace.TICKET_EVENTS)
    return sum(1 for _id, f in entries if f["linkedid"] == linkedid and f["event"] == "closed")


async def test_answers_is_true_only_for_an_asterisk_manager_that_greets() -> None:
    async def greet(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"Asterisk Call Manager/11.0.0\r\n")
        await w.drain()
        w.close()

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # a frozen Asterisk: the kernel accepts, nobody speaks
        w.close()

    ports = PortAllocator()
    good, mute, closed = ports.one(), ports.one(), ports.one()
    servers = [await asyncio.start_server(greet, "127.0.0.1", good), await asyncio.start_server(silent, "127.0.0.1", mute)]
    try:
        assert await answers("127.0.0.1", good)
        assert not await answers("127.0.0.1", mute, timeout=0.3)
        assert not await answers("127.0.0.1", closed)
    finally:
        for s in servers:
            s.close()


async def test_a_short_outage_or_a_node_still_followed_closes_nothing(redis: Any, tickets: TicketStore) -> None:
    nodes, settings = Nodes(), cluster_settings()
    watch = NodeWatch(lambda: settings, redis, tickets, KEY, "host:4573:1", probe=nodes.probe)
    await open_call(tickets, "ast-a-1796000000.1", "13900000001")
    t0 = time.time()
    nodes.up[AMI_A] = False
    await watch.check(t0)
    await watch.check(t0 + DEAD_AFTER - 0.5)  # not yet
    nodes.up[AMI_A] = True
    await watch.check(t0 + DEAD_AFTER - 0.2)  # a flapping link: it answered, the outage starts again
    nodes.up[AMI_A] = False
    await watch.check(t0 + DEAD_AFTER + 1)
    await watch.check(t0 + 2 * DEAD_AFTER - 0.5)
    # silent long enough, but its follower still hears it (the watcher's own link is the one down)
    follower = Lease(redis, "follow", AMI_A, "host:4574:2", ttl=30)
    assert await follower.acquire()
    await redis.hset(keyspace.cdr_progress(AMI_A), "followed_until", f"{t0 + 2 * DEAD_AFTER:.3f}")
    await watch.check(t0 + 2 * DEAD_AFTER + 1)
    assert "ast-a" not in watch.gone
    assert await closed_phases(redis, "ast-a-1796000000.1") == 0
    assert await follower.renew()  # its lease was left alone


async def test_a_gone_node_has_its_open_calls_closed_once_and_its_waiting_callers_called_back_once(
    redis: Any, tickets: TicketStore, redis_url: str, tmp_path: Path,
) -> None:
    nodes, settings = Nodes(), cluster_settings()
    t0 = time.time()
    in_menu = await open_call(tickets, "ast-a-1796000000.1", "13900000001")
    in_queue = await open_call(tickets, "ast-a-1796000000.2", "13900000002")
    talking = await open_call(tickets, "ast-a-1796000000.3", "13900000003")
    emergency = await open_call(tickets, "ast-a-1796000000.4", "110")  # a caller ID must never make us dial 110
    abroad = await open_call(tickets, "ast-a-1796000000.5", "+447911123456")  # nor abroad
    other_node = await open_call(tickets, "ast-b-1796000000.6", "13900000006")
    ended = await open_call(tickets, "ast-a-1796000000.7", "13900000007")
    ended.disposition = "answered"
    tickets.write_nowait(ended, "closed")
    await tickets.drain()
    await waiting(redis, in_queue.linkedid, AMI_A, t0 - 20)
    await waiting(redis, abroad.linkedid, AMI_A, t0 - 10)
    await waiting(redis, other_node.linkedid, AMI_B, t0 - 10)
    await redis.hset(keyspace.desk("agent1001"), "doc", json.dumps({"linkedid": talking.linkedid, "state": "connected"}))
    # the node's follower survived it (its engine runs elsewhere), but has had no AMI since
    old = Lease(redis, "follow", AMI_A, "host:4573:9", ttl=30)
    assert await old.acquire()
    old_token = old.token
    await redis.hset(keyspace.cdr_progress(AMI_A), "followed_until", f"{t0:.3f}")

    watch = NodeWatch(lambda: settings, redis, TicketStore(redis_url, tmp_path / "spool", name="nodes",
                                                           retention_days=1, caller_key=KEY),
                      KEY, "host:4575:3", probe=nodes.probe)
    nodes.up[AMI_A] = False
    await watch.check(t0 + 0.1)
    assert await closed_phases(redis, in_menu.linkedid) == 0
    await watch.check(t0 + FOLLOW_FRESH + 0.5)  # silent > DEAD_AFTER, followed_until stale
    assert watch.gone == {"ast-a"}

    for t, place in ((in_menu, "menus"), (in_queue, "waiting"), (talking, "talking"), (emergency, "menus"),
                     (abroad, "waiting")):
        stored = await tickets.get(t.linkedid)
        assert stored is not None and stored.disposition == "node_lost" and stored.closed_by == "node", place
        assert stored.hangup_cause == "lost with its Asterisk node ast-a"
    assert (await tickets.get(talking.linkedid)).agent == "agent1001"  # type: ignore[union-attr]
    assert "queue:general:1" in await tickets.phases(in_queue.linkedid)
    assert (await tickets.get(other_node.linkedid)).disposition == ""  # type: ignore[union-attr]
    assert (await tickets.get(ended.linkedid)).disposition == "answered"  # type: ignore[union-attr]
    assert not await redis.hexists(keyspace.QUEUE_WAITING, in_queue.linkedid)  # off the wallboard
    assert await redis.hexists(keyspace.QUEUE_WAITING, other_node.linkedid)

    # callbacks: the menus and the queue (policy), not the seat's caller, never 110 or abroad
    pending = await redis.hgetall(keyspace.CALLBACKS)
    assert set(pending) == {in_menu.linkedid, in_queue.linkedid}
    assert json.loads(pending[in_queue.linkedid])["queued_at"] == f"{t0 - 20:.6f}"  # the place it had
    assert json.loads(pending[in_queue.linkedid])["line"] == "12345", "recorded by the rule of the line dialed"
    for t in (emergency, abroad):
        stored = await tickets.get(t.linkedid)
        assert stored is not None and stored.callback and stored.callback["status"] == "refused"
    stored = await tickets.get(in_menu.linkedid)
    assert stored is not None and stored.callback and stored.callback["status"] == "pending"

    # the old holder lost the lease (its late writes are refused); the duty gave it back
    assert not await old.renew()
    assert await redis.get(keyspace.lease("follow", AMI_A)) is None
    assert int(await redis.get(keyspace.lease_token("follow", AMI_A))) > old_token

    # the follower of the node, back and reconciling, closes a call again: nothing changes
    back = Ticket.from_json({**in_menu.to_json(), "disposition": "error", "closed_by": "lost"})
    tickets.write_nowait(back, "closed")
    await tickets.drain()
    assert (await tickets.get(in_menu.linkedid)).disposition == "node_lost"  # type: ignore[union-attr]

    # another round, or another holder of the duty: nothing is closed or scheduled twice
    await watch.check(t0 + FOLLOW_FRESH + 1.5)
    second = NodeWatch(lambda: settings, redis, tickets, KEY, "host:4576:4", probe=nodes.probe)
    await second.check(t0 + FOLLOW_FRESH + 2)
    await second.check(t0 + FOLLOW_FRESH + 2 + DEAD_AFTER)
    for t in (in_menu, in_queue, talking, emergency, abroad):
        assert await closed_phases(redis, t.linkedid) == 1
    assert set(await redis.hgetall(keyspace.CALLBACKS)) == {in_menu.linkedid, in_queue.linkedid}

    # two live nodes' callback workers: each request is placed once
    amis = [RecordingAmi(), RecordingAmi()]
    workers = [CallbackWorker(settings, tickets, redis_url, KEY, lambda a=ami: a) for ami in amis]  # type: ignore[misc]
    try:
        for w in workers:
            await w._place_due(time.time() + 60)  # due: the watch ran on a clock ahead of this one
        originated = [a for ami in amis for a in ami.actions if a["Action"] == "Originate"]
        assert sorted(dict(v.split("=", 1) for v in a["Variable"].split(","))["_IVR_CALLBACK_OF"] for a in originated) == \
            [in_menu.linkedid, in_queue.linkedid]
    finally:
        for w in workers:
            await w.close()

    nodes.up[AMI_A] = True  # the node answers again: a later outage is a new one
    await watch.check(t0 + 20)
    assert watch.gone == set() and "ast-a" not in watch.down_since
    await watch.tickets.close()


async def test_a_token_no_replica_confirmed_closes_nothing_and_frees_the_lease(redis: Any, tickets: TicketStore) -> None:
    """Redis behind Sentinel: a token a promoted replica could hand out again is never acted on."""
    from redis.exceptions import RedisError

    async def unconfirmed() -> None:
        raise RedisError("NOREPLICAS")

    nodes, settings = Nodes(), cluster_settings()
    t = await open_call(tickets, "ast-a-1796000000.1", "13900000001")
    watch = NodeWatch(lambda: settings, redis, tickets, KEY, "host:4573:1", probe=nodes.probe, confirm=unconfirmed)
    nodes.up[AMI_A] = False
    t0 = time.time()
    await watch.check(t0)
    with pytest.raises(RedisError):
        await watch.check(t0 + DEAD_AFTER + 1)
    assert watch.gone == set() and await closed_phases(redis, t.linkedid) == 0
    assert await redis.get(keyspace.lease("follow", AMI_A)) is None  # given back: the node's engines take it
    assert not await redis.hexists(keyspace.CALLBACKS, t.linkedid)


def test_a_node_loss_policy_naming_a_queue_without_callbacks_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    import shutil

    from ivr.config import ConfigError

    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    queues = config / "queues.yaml"
    text = queues.read_text(encoding="utf-8")
    assert "queue: general, delay: 30}" in text
    queues.write_text(text.replace("queue: general, delay: 30}", "queue: expert-hrss, delay: 30}"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"queues.yaml:\d+:\d+: 'expert-hrss' is not a queue with a callback"):
        load_config(config, environ={})


async def test_a_gone_nodes_view_of_the_seats_is_taken_out_at_once(
    redis: Any, tickets: TicketStore, redis_url: str,
) -> None:
    """The seat talked on A when A died: the published seat said "talking on A" until A's view
    expired (25 s); the duty takes A's view out, and B's view (the seat free) is what is shown."""
    nodes, settings, now = Nodes(), cluster_settings(), time.time()
    talking = Seat("agent1001", {"general": Membership(device="2", in_call=True)}, since=now)
    free = Seat("agent1001", {"general": Membership(device="1")}, since=now)
    views = [SeatStore(redis_url, node=AMI_A), SeatStore(redis_url, node=AMI_B)]
    reader = SeatStore(redis_url)
    try:
        await views[0].replace({"agent1001": talking.to_json(now)})
        await views[1].replace({"agent1001": free.to_json(now)})
        assert (await reader.all())["agent1001"]["node"] == AMI_A
        watch = NodeWatch(lambda: settings, redis, tickets, KEY, "host:4573:1", probe=nodes.probe, seats=reader)
        nodes.up[AMI_A] = False
        await watch.check(now)
        await watch.check(now + FOLLOW_FRESH + 0.5)
        assert watch.gone == {"ast-a"}
        seat = (await reader.all())["agent1001"]
        assert (seat["state"], seat["node"], list(seat["nodes"])) == ("available", "", [AMI_B])
    finally:
        for store in (*views, reader):
            await store.close()
