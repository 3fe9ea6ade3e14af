"""The live pages' event streams over real HTTP (a console of its own on a real Redis): the
first event is always the whole state as it is now — also after a reconnect that missed
notices — and later events follow what Redis says, whichever process wrote it."""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from console.sessions import SessionStore
from console.users import UserStore
from ivr.store import keyspace
from ivr.config import WebSettings
from testbed.console import ConsoleSite


@pytest.fixture
async def redis(console: ConsoleSite) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(console.redis_url, decode_responses=True)
    yield client
    await client.delete(keyspace.QUEUE_WAITING, keyspace.desk("agent1001"))
    await client.aclose()


async def signed_in(redis: aioredis.Redis, console: ConsoleSite, role: str) -> dict[str, str]:
    user = await UserStore(redis).get(console.account(role).name)
    assert user is not None
    session = await SessionStore(redis, WebSettings()).create(user)
    return {"ivr_session": session.id}


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) of a server-sent event stream, as a browser's EventSource parses it."""
    name, data = "message", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


async def waiting_in(redis: aioredis.Redis, uniqueid: str, notify: bool) -> None:
    entry = {"uniqueid": uniqueid, "queue": "general", "line": "12345", "joined": time.time() - 20, "asterisk": "a"}
    await redis.hset(keyspace.QUEUE_WAITING, uniqueid, json.dumps(entry))
    if notify:
        await redis.publish(keyspace.LIVE_CHANGED, "waiting")


def general(snapshot: dict[str, Any]) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["name"] == "general")


async def test_the_wallboard_stream_sends_the_state_first_then_changes_and_again_after_a_reconnect(
    console: ConsoleSite, redis: aioredis.Redis,
) -> None:
    cookies = await signed_in(redis, console, "supervisor")
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.get(console.url + "/wallboard/events") as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            stream = events(response)
            name, first = await anext(stream)
            assert name == "snapshot" and general(first)["waiting"] == 0
            await waiting_in(redis, "c1", notify=True)
            _, later = await anext(stream)
            while general(later)["waiting"] != 1:  # (a periodic refresh may come first)
                _, later = await anext(stream)
            assert general(later)["longest_wait_s"] >= 20
        # while no browser listens, a caller joins and its notice goes to nobody
        await waiting_in(redis, "c2", notify=False)
        async with http.get(console.url + "/wallboard/events") as response:
            _, first = await anext(events(response))
            assert general(first)["waiting"] == 2  # the state, not the events missed


async def test_the_desk_stream_pops_an_offer_written_by_any_engine_and_shows_it_again_after_a_reconnect(
    console: ConsoleSite, redis: aioredis.Redis,
) -> None:
    cookies = await signed_in(redis, console, "agent")
    offer = {"agent": "agent1001", "linkedid": "L-desk-1", "state": "offered", "at": time.time(),
             "offered_at": time.time(), "stub": {"linkedid": "L-desk-1", "queue": "general", "line": "12345",
                                                 "caller": "139****0001", "request_type": "complaint"}}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.get(console.url + "/desk/agent1001/events") as response:
            stream = events(response)
            name, first = await anext(stream)
            assert name == "desk" and first["agent"] == "agent1001" and first["call"] is None
            await redis.hset(keyspace.desk("agent1001"), mapping={"doc": json.dumps(offer), "at": "1"})
            await redis.publish(keyspace.DESK_CHANGED, "agent1002")  # another desk's notice: not this one's
            await redis.publish(keyspace.DESK_CHANGED, "agent1001")
            _, popped = await anext(stream)
            assert popped["call"]["state"] == "offered" and popped["call"]["linkedid"] == "L-desk-1"
            stub = popped["call"]["stub"]
            assert (stub["caller"], stub["request_label"], stub["history"]) == ("139****0001", "投诉", [])
        async with http.get(console.url + "/desk/agent1001/events") as response:
            _, first = await anext(events(response))
            assert first["call"]["linkedid"] == "L-desk-1"
        async with http.get(console.url + "/desk/agent1002/events") as response:
            assert response.status == 403  # an agent's stream is its own
