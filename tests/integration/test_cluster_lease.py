"""Exactly one follower per Asterisk (docs/cluster.md): the engine holding the follow lease is
SIGKILLed while 15 callers wait in queues, 5 of them hang up before anyone follows again; the
other engine takes the lease within 5 s, reconciles, and every ticket is closed exactly once
with the right disposition and its IVR path (served by the engine that was not following)."""

from __future__ import annotations

import json
import time
from typing import Any, Mapping, cast

import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.store import keyspace
from ivr.store.lease import lease_status
from testbed.bed import TestBed
from testbed.calls import Phones, call_record, hang_up_all, pause_all, ticket_events, until
from testbed.sipp import keys

pytestmark = pytest.mark.timeout(240)

CALLS, GAP = 15, 5


async def holder(redis: aioredis.Redis, bed: TestBed) -> tuple[str, int | None]:
    """The follow lease's holder (identity '' when free) and its engine's index in the bed."""
    assert bed.state
    identity = (await lease_status(redis, f"127.0.0.1:{bed.state.ami_port}"))["follow"].holder
    port = int(identity.split(":")[1]) if identity else 0
    return identity, bed.state.engine_ports.index(port) if port in bed.state.engine_ports else None


async def hang_up(ami: AmiClient, callers: list[str]) -> None:
    """The callers' own channels hang up (as if they put the phone down while waiting)."""
    listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    for event in listing:
        if event.get("Event") == "CoreShowChannel" and event.get("CallerIDNum") in callers \
                and event.get("Channel", "").startswith("PJSIP/pstn"):
            await ami.action({"Action": "Hangup", "Channel": event["Channel"]})


async def closed(redis: aioredis.Redis, linkedid: str) -> Mapping[str, Any] | None:
    fields = cast(dict[str, str], await redis.hgetall(keyspace.ticket(linkedid)))
    return fields if "phase:closed" in fields else None


async def test_the_lease_holder_killed_while_calls_wait_another_engine_takes_over_and_every_ticket_closes_once(
    cluster: TestBed, cluster_redis: aioredis.Redis, cluster_ami: AmiClient, cluster_phones: Phones,
) -> None:
    state = cluster.state
    assert state
    _, index = await until(lambda: _held(cluster_redis, cluster), timeout=20)
    if index == 0:  # engine 0 serves FastAGI: let engine 1 follow, so the IVR records come from a non-holder
        cluster.stop_engine(0)  # a graceful stop hands the lease over at once
        await until(lambda: _held_by(cluster_redis, cluster, 1), timeout=10)
        cluster.start_engine(index=0)
    dead, _ = await holder(cluster_redis, cluster)
    await pause_all(cluster, cluster_ami, True)
    callers = [cluster_phones.next_caller() for _ in range(CALLS)]
    joined: set[str] = set()
    gone: set[str] = set()
    cluster_ami.on("QueueCallerJoin", lambda e: joined.add(e.get("CallerIDNum", "")))
    cluster_ami.on("Hangup", lambda e: gone.add(e.get("CallerIDNum", "")) if e.get("Uniqueid") == e.get("Linkedid")
                   else None)
    try:
        await cluster_phones.calls("12345", callers, keys("2", first_ms=1500), hold_ms=120_000)
        await until(lambda: joined >= set(callers), timeout=60)
        linkedids = {c: (await call_record(cluster_redis, c))["unique_id"] for c in callers}

        async def all_opened() -> bool:
            return all([await cluster_redis.hexists(keyspace.ticket(lid), "phase:opened") for lid in linkedids.values()])

        await until(all_opened, timeout=20)  # the holder follows them: their tickets are open

        killed = time.monotonic()
        cluster.kill_engine(1)  # SIGKILL: no release, the lease stays until its TTL
        await hang_up(cluster_ami, callers[:GAP])
        await until(lambda: gone >= set(callers[:GAP]), timeout=5)
        during_gap = await holder(cluster_redis, cluster)
        new, new_index = await until(lambda: _held_by(cluster_redis, cluster, 0), timeout=10)
        took = time.monotonic() - killed
        print(f"\nfollow lease: {dead} killed, {new} holds it {took:.2f} s later")
        assert during_gap[0] == dead  # the 5 calls ended while nobody followed
        assert new != dead and new_index == 0 and took < 5.0
        await until(lambda: _followed_since(cluster_redis, cluster, time.time() - took), timeout=10)  # reconciled

        await hang_up(cluster_ami, callers[GAP:])
        await until(lambda: gone >= set(callers), timeout=10)
        tickets = {c: await until(_closed_in(cluster_redis, lid), timeout=30) for c, lid in linkedids.items()}
        for caller, fields in tickets.items():
            doc = json.loads(fields["doc"])
            what = f"caller {caller} ({'in the gap' if caller in callers[:GAP] else 'after the takeover'}): {doc}"
            assert await ticket_events(cluster_redis, linkedids[caller]) == ["opened", "closed"], what
            assert doc["disposition"] == "abandoned_queue" and doc["queue"] == "general", what
            assert doc["ivr"]["route"] == "queue" and doc["ivr"]["keys"] == ["2"], what  # the non-holder's record
            assert doc["request_type"] == "complaint", what
            # the gap's calls were finished from the CDR by the new holder, the others followed by it
            assert doc["closed_by"] == ("cdr" if caller in callers[:GAP] else "ami"), what
            assert [f for f in fields if f.startswith("phase:queue:")] == ["phase:queue:general:1"], what  # counted once
        numbers = [f["number"] for f in tickets.values()]
        assert len(set(numbers)) == CALLS
    finally:
        await hang_up_all(cluster_ami)
        await pause_all(cluster, cluster_ami, False)
        if not cluster.engine_running(1):
            cluster.start_engine(index=1)


async def _followed_since(redis: aioredis.Redis, bed: TestBed, since: float) -> bool:
    """The follower reconciled with Asterisk after ``since`` (it marks how far it followed)."""
    assert bed.state
    value = await redis.hget(keyspace.cdr_progress(f"127.0.0.1:{bed.state.ami_port}"), "followed_until")
    return bool(value) and float(value) > since


def _closed_in(redis: aioredis.Redis, linkedid: str) -> Any:
    return lambda: closed(redis, linkedid)


async def _held(redis: aioredis.Redis, bed: TestBed) -> tuple[str, int | None] | None:
    found = await holder(redis, bed)
    return found if found[0] else None


async def _held_by(redis: aioredis.Redis, bed: TestBed, index: int) -> tuple[str, int | None] | None:
    found = await holder(redis, bed)
    return found if found[1] == index else None
