"""The live follower in a real redis-server: AMI facts become waiting callers and agents' desks
(with their notices), two engines seeing the same events write one desk, an older fact never
overwrites a newer one, and an agent's amend reaches the ticket of a call the engine follows."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ivr.store import keyspace
from queues.follower import LiveFollower
from tickets.store import TicketStore
from testbed.calls import until
from queues.waiting import Amend
from tickets.model import IvrPath, Ticket

AGENTS = {"agent1001": None, "agent1002": None}
T0 = 1_764_000_000.0


def iso(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat()


def ticket() -> Ticket:
    t = Ticket(linkedid="L1", line="12345", caller="13900000001", received=iso(T0),
               queued=iso(T0 + 10), line_title="12345政务服务便民热线", request_type="complaint",
               request_type_source="ivr", repeat_of=["20251120-12345-00003"])
    t.ivr = IvrPath(flow="main", nodes=["main/menu", "main/queue"], keys=["3"], route="queue")
    return t


def event(name: str, at: float, **fields: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{at:.6f}", "Linkedid": "L1", **fields}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def followers(redis_url: str) -> AsyncIterator[list[LiveFollower]]:
    the_ticket = ticket()
    made = [LiveFollower(redis_url, "ast-1", lambda lid: the_ticket if lid == "L1" else None, lambda: AGENTS)
            for _ in range(2)]
    tasks = [asyncio.create_task(f.run()) for f in made]
    yield made
    for task in tasks:
        task.cancel()
    for f in made:
        await f.close()


async def desk(redis: aioredis.Redis, agent: str) -> dict | None:
    doc = await redis.hget(keyspace.desk(agent), "doc")
    return json.loads(doc) if doc else None


async def test_an_offer_pops_on_the_agents_desk_with_the_stub_before_the_answer(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    live = followers[0]
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(keyspace.DESK_CHANGED)
        await pubsub.get_message(timeout=1)
        live.on_event(event("QueueCallerJoin", T0 + 10, Uniqueid="L1", Queue="q-general", Position="1"))
        live.on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
        message = await until(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2), 5)
    assert message["data"] == "agent1001"
    record = await desk(redis, "agent1001")
    assert record is not None and record["state"] == "offered" and record["linkedid"] == "L1"
    stub = record["stub"]
    assert stub["caller"] == "139****0001" and "13900000001" not in json.dumps(record)
    assert (stub["line"], stub["request_type"], stub["ivr_keys"], stub["queue"]) == ("12345", "complaint", ["3"], "general")
    assert stub["wait_seconds"] == 4.0 and stub["repeat_of"] == ["20251120-12345-00003"]
    waiting = await redis.hgetall(keyspace.QUEUE_WAITING)
    assert json.loads(waiting["L1"])["queue"] == "general" and json.loads(waiting["L1"])["line"] == "12345"

    live.on_event(event("QueueCallerLeave", T0 + 15, Uniqueid="L1", Queue="q-general"))
    live.on_event(event("AgentConnect", T0 + 15, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
    await until(lambda: _state(redis, "agent1001", "connected"), 5)
    assert await redis.hlen(keyspace.QUEUE_WAITING) == 0
    live.on_event(event("Hangup", T0 + 40, Uniqueid="L1"))
    await until(lambda: _state(redis, "agent1001", "ended"), 5)


async def _state(redis: aioredis.Redis, agent: str, state: str) -> bool:
    record = await desk(redis, agent)
    return record is not None and record["state"] == state


async def test_two_engines_write_one_desk_and_an_older_fact_never_overwrites_a_newer_one(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    for live in followers:
        live.on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    await until(lambda: _state(redis, "agent1002", "offered"), 5)
    followers[0].on_event(event("AgentRingNoAnswer", T0 + 29, Uniqueid="L1", Interface="PJSIP/agent1002"))
    await until(lambda: _state(redis, "agent1002", "missed"), 5)
    # the second engine is late with the same offer: the newer "missed" stays
    followers[1].on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    followers[1].on_event(event("QueueCallerJoin", T0 + 30, Uniqueid="L9", Queue="q-general"))
    await until(lambda: redis.hexists(keyspace.QUEUE_WAITING, "L9"), 5)  # it has flushed
    assert await _state(redis, "agent1002", "missed")
    # rung together with another seat, which answers: this one's offer is over
    followers[0].on_event(event("AgentCalled", T0 + 32, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    followers[0].on_event(event("AgentCalled", T0 + 32, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
    followers[0].on_event(event("AgentConnect", T0 + 35, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
    await until(lambda: _state(redis, "agent1001", "connected"), 5)
    await until(lambda: _state(redis, "agent1002", "missed"), 5)
    # a member that is not a configured agent has no desk
    followers[0].on_event(event("AgentCalled", T0 + 31, Uniqueid="L1", Interface="PJSIP/stranger", Queue="q-general"))
    await until(lambda: redis.hexists(keyspace.QUEUE_WAITING, "L9"), 5)
    assert await redis.exists(keyspace.desk("stranger")) == 0


async def test_an_agents_amend_reaches_the_ticket_of_a_call_the_engine_follows(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    live = followers[0]
    amend = Amend("L1", "agent1001", "help", "省民政厅", "需回访")
    the_ticket = live.ticket_of("L1")
    assert the_ticket is not None

    async def sent_and_applied() -> bool:  # sent until the reader (started at "now") has taken one
        if live.amends_applied == 0:
            await redis.xadd(keyspace.DESK_AMENDS, {"amend": json.dumps(amend.to_json(), ensure_ascii=False)})
            await asyncio.sleep(0.2)
        return live.amends_applied > 0

    await until(sent_and_applied, 10, 0.2)
    assert (the_ticket.request_type, the_ticket.request_type_source) == ("help", "agent")
    assert (the_ticket.department, the_ticket.notes) == ("省民政厅", "需回访")


async def test_an_amend_that_comes_just_after_the_close_is_written_on_top_of_the_closing_write(
    redis_url: str, redis: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("queues.follower.REPAIR_AFTER", 0.05)
    tickets = TicketStore(redis_url, tmp_path / "spool", name="engine", retention_days=1, caller_key=b"k" * 16)
    live = LiveFollower(redis_url, "ast-1", lambda lid: None, lambda: AGENTS, tickets=tickets)  # closed: not followed
    task = asyncio.create_task(live.run())
    try:
        closed = ticket()
        closed.disposition, closed.agent = "answered", "agent1001"
        await tickets.write(closed, "closed")  # the engine's closing write, without the agent's type
        await tickets.drain()
        live.on_event(event("Hangup", T0 + 40, Uniqueid="L1"))
        amend = Amend("L1", "agent1001", "help", "省民政厅", "")

        async def sent_and_written() -> bool:
            if live.amends_applied == 0:
                await redis.xadd(keyspace.DESK_AMENDS, {"amend": json.dumps(amend.to_json(), ensure_ascii=False)})
                await asyncio.sleep(0.3)
            return live.amends_applied > 0

        await until(sent_and_written, 10, 0.2)
        await tickets.drain()
        stored = await tickets.get("L1")
        assert stored is not None and (stored.request_type, stored.request_type_source) == ("help", "agent")
        assert stored.disposition == "answered" and await tickets.revision("L1") == 21  # on top of the close
    finally:
        task.cancel()
        await live.close()
        await tickets.close()


async def test_a_seat_taken_by_another_nodes_call_keeps_that_call_on_its_desk(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    """Two nodes ring one free seat in the same moment; the proxy lets node A's INVITE through and
    answers node B's 486, which app_queue reports as a ring of 0 s (docs/cluster.md, collisions).
    The seat never rang for B's caller: its desk shows A's caller, not B's as missed."""
    a, b = followers
    a.on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
    await until(lambda: _state(redis, "agent1001", "offered"), 5)
    b.on_event(event("AgentCalled", T0 + 14.01, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1001",
                     Queue="q-general"))
    await until(lambda: _shows(redis, "agent1001", "L2"), 5)
    b.on_event(event("AgentRingNoAnswer", T0 + 14.02, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1001",
                     RingTime="0"))
    await until(lambda: _shows(redis, "agent1001", "L1"), 5)
    assert await _state(redis, "agent1001", "offered")
    a.on_event(event("AgentConnect", T0 + 18, Uniqueid="L1", Interface="PJSIP/agent1001", Queue="q-general"))
    await until(lambda: _state(redis, "agent1001", "connected"), 5)
    # a late withdrawal of an offer the desk no longer shows changes nothing
    b.on_event(event("AgentCalled", T0 + 14.01, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1001",
                     Queue="q-general"))
    b.on_event(event("AgentRingNoAnswer", T0 + 14.03, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1001",
                     RingTime="1000"))
    a.on_event(event("QueueCallerJoin", T0 + 30, Uniqueid="L8", Queue="q-general"))
    b.on_event(event("QueueCallerJoin", T0 + 30, Linkedid="L9", Uniqueid="L9", Queue="q-general"))
    await until(lambda: redis.hexists(keyspace.QUEUE_WAITING, "L9"), 5)  # b has flushed
    assert await _state(redis, "agent1001", "connected") and await _shows(redis, "agent1001", "L1")


async def test_an_offer_withdrawn_on_a_free_desk_leaves_it_empty_and_a_long_ring_is_missed(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    live = followers[0]
    live.on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    await until(lambda: _state(redis, "agent1002", "offered"), 5)
    live.on_event(event("AgentRingNoAnswer", T0 + 14.5, Uniqueid="L1", Interface="PJSIP/agent1002", RingTime="0"))
    await until(lambda: _gone(redis, "agent1002"), 5)
    live.on_event(event("AgentCalled", T0 + 20, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    await until(lambda: _state(redis, "agent1002", "offered"), 5)
    live.on_event(event("AgentRingNoAnswer", T0 + 35, Uniqueid="L1", Interface="PJSIP/agent1002", RingTime="15000"))
    await until(lambda: _state(redis, "agent1002", "missed"), 5)


async def _shows(redis: aioredis.Redis, agent: str, linkedid: str) -> bool:
    record = await desk(redis, agent)
    return record is not None and record["linkedid"] == linkedid


async def _gone(redis: aioredis.Redis, agent: str) -> bool:
    return await redis.exists(keyspace.desk(agent)) == 0


async def test_the_winning_offer_written_after_the_losing_one_is_put_back_when_that_is_withdrawn(
    followers: list[LiveFollower], redis: aioredis.Redis,
) -> None:
    """The same race, with node B's engine first in Redis: A's older offer is kept behind it."""
    a, b = followers
    b.on_event(event("AgentCalled", T0 + 14.01, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1002",
                     Queue="q-general"))
    await until(lambda: _shows(redis, "agent1002", "L2"), 5)
    a.on_event(event("AgentCalled", T0 + 14, Uniqueid="L1", Interface="PJSIP/agent1002", Queue="q-general"))
    a.on_event(event("QueueCallerJoin", T0 + 30, Uniqueid="L8", Queue="q-general"))
    await until(lambda: redis.hexists(keyspace.QUEUE_WAITING, "L8"), 5)  # a has flushed
    assert await _shows(redis, "agent1002", "L2")  # older: not shown, kept
    b.on_event(event("AgentRingNoAnswer", T0 + 14.02, Linkedid="L2", Uniqueid="L2", Interface="PJSIP/agent1002",
                     RingTime="0"))
    await until(lambda: _shows(redis, "agent1002", "L1"), 5)
    assert await _state(redis, "agent1002", "offered")
