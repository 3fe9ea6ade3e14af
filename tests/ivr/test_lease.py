"""Leases in a real redis-server: one holder per duty, renewed by it alone, taken over after its
death with a larger fencing token, lost at once when a renewal fails; and a ticket write under a
stale token is refused by Redis (a paused old holder that wakes up cannot write)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from ivr.store import keyspace, redis_client
from testbed.calls import until
from ivr.store.lease import DUTIES, Lease, keep_leases, lease_status
from queues import kpi
from tickets.model import QueueVisit, Ticket
from tickets.store import TicketStore
from testbed.ports import PortAllocator
from testbed.processes import start_redis

CALLER_KEY = b"test-caller-key-not-a-secret"
ASTERISK = "127.0.0.1:5038"
TTL, RENEW = 1.0, 0.25  # s: short, so that a takeover is quick to wait for (a renewal still has time on two busy cores)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[object]:
    client = redis_client(redis_url, timeout=1.0)
    yield client
    await client.aclose()


def lease(redis: object, identity: str, duty: str = "follow") -> Lease:
    return Lease(redis, duty, ASTERISK, identity, ttl=TTL, renew_every=RENEW)  # type: ignore[arg-type]


async def test_a_free_lease_is_taken_with_token_1_and_nobody_else_takes_it_while_it_is_renewed(redis: object) -> None:
    a, b = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    assert await a.acquire() and a.token == 1 and a.held
    assert not await b.acquire() and b.token == 0 and not b.held
    for _ in range(3):  # renewed past its first TTL: still a's
        assert await a.renew()
    assert not await b.acquire()
    status = await lease_status(redis, ASTERISK)  # type: ignore[arg-type]
    assert status["follow"].holder == "host:4573:1" and status["follow"].token == 1
    assert 0 < status["follow"].ttl <= TTL
    assert status["hours"] == ("", 0, 0.0)  # another duty, nobody holds it


async def test_when_the_holder_stops_renewing_another_engine_takes_the_lease_after_the_ttl_with_a_larger_token(
    redis: object,
) -> None:
    a, b = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    assert await a.acquire()
    took: list[bool] = []

    async def try_b() -> None:
        took.append(await b.acquire())

    while not took or not took[-1]:  # a is dead: b tries as its keeper would, until the key expires
        await try_b()
        assert len(took) < 200, "b never took the lease"
        await asyncio.sleep(0.02)
    assert b.token == 2 and b.held
    assert not await a.renew()  # the old holder cannot renew what is b's now
    status = await lease_status(redis, ASTERISK)  # type: ignore[arg-type]
    assert status["follow"].holder == "host:4574:2" and status["follow"].token == 2


async def test_a_holder_that_could_not_reach_redis_past_its_ttl_keeps_its_token_unless_another_engine_took_one(
    redis: object,
) -> None:
    a, b = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    assert await a.acquire()
    await until_expired(redis)
    assert await a.renew() and a.token == 1  # nobody drew a token meanwhile: the same lease goes on
    assert not await b.acquire()
    await until_expired(redis)
    assert await b.acquire() and b.token == 2  # a was silent, b took it
    assert not await a.renew() and a.token == 0 and not a.held  # a hears it at its next renewal
    await redis.delete(keyspace.lease_token("follow", ASTERISK))  # type: ignore[attr-defined]
    await until_expired(redis)
    assert await b.renew()  # a Redis that lost the counter: it is raised to b's token again
    assert await redis.get(keyspace.lease_token("follow", ASTERISK)) == "2"  # type: ignore[attr-defined]


async def until_expired(redis: object) -> None:
    deadline = time.monotonic() + TTL * 5
    while await redis.exists(keyspace.lease("follow", ASTERISK)):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the lease key never expired"
        await asyncio.sleep(0.02)


async def test_two_keepers_one_holds_and_when_it_dies_the_other_takes_over_and_runs_the_duty(redis: object) -> None:
    a, b = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    gained: list[str] = []
    started: list[str] = []

    async def duty(name: str) -> None:
        started.append(name)
        await asyncio.Event().wait()

    keep_a = asyncio.create_task(a.keep(lambda _t: gained.append("a")))
    await until(lambda: a.held)
    keep_b = asyncio.create_task(b.keep(lambda _t: gained.append("b")))
    work_a = asyncio.create_task(a.while_held(lambda: duty("a")))
    work_b = asyncio.create_task(b.while_held(lambda: duty("b")))
    try:
        await until(lambda: started == ["a"])
        keep_a.cancel()  # a dies without releasing (SIGKILL): the key stays until its TTL
        await until(lambda: b.held)
        assert gained == ["a", "b"] and b.token == 2
        await until(lambda: started == ["a", "b"])  # the duty moved with the lease
        assert (await lease_status(redis, ASTERISK))["follow"].holder == "host:4574:2"  # type: ignore[arg-type]
    finally:
        for task in (keep_a, keep_b, work_a, work_b):
            task.cancel()
        await asyncio.gather(keep_a, keep_b, work_a, work_b, return_exceptions=True)


async def test_an_engine_keeps_its_three_leases_in_one_command_a_tick_and_another_takes_all_three_when_it_dies(
    redis_url: str,
) -> None:
    sent: list[tuple[object, ...]] = []
    clients = [redis_client(redis_url, timeout=1.0) for _ in range(2)]
    real = clients[1].execute_command

    async def counted(*args: object, **options: object) -> object:
        sent.append(args)
        return await real(*args, **options)

    clients[1].execute_command = counted  # type: ignore[method-assign]  # what engine b sends to Redis
    a, b = ([Lease(client, duty, ASTERISK, identity, ttl=TTL, renew_every=RENEW) for duty in DUTIES]
            for client, identity in zip(clients, ("host:4573:1", "host:4574:2")))
    gained: list[tuple[str, int]] = []
    keep_a = asyncio.create_task(keep_leases([(lease, lambda _t: None, lambda: None) for lease in a]))
    await until(lambda: all(lease.held for lease in a))
    keep_b = asyncio.create_task(keep_leases([(lease, lambda t, d=lease.duty: gained.append((d, t)), lambda: None)
                                              for lease in b]))
    try:
        await until(lambda: len(sent) >= 3)  # b tried three times while a held them
        assert not any(lease.held for lease in b)
        keep_a.cancel()  # a dies without releasing (SIGKILL): the keys stay until their TTL
        await until(lambda: all(lease.held for lease in b))
        assert sorted(gained) == [(duty, 2) for duty in sorted(DUTIES)]  # each duty's second token
        # every command b sent was one script over all three leases: no GET, no command per lease
        ticks = [args for args in sent if args[0] != "SCRIPT LOAD"]  # (loaded once, if it was not yet)
        assert ticks and all(args[0] == "EVALSHA" and args[2] == 2 * len(DUTIES) for args in ticks), sent
    finally:
        for task in (keep_a, keep_b):
            task.cancel()
        await asyncio.gather(keep_a, keep_b, return_exceptions=True)
        for client in clients:
            await client.aclose()


async def test_a_holder_told_by_redis_that_the_lease_is_another_engines_loses_it_at_once_and_stops_its_duty(redis: object) -> None:
    a = lease(redis, "host:4573:1")
    lost: list[bool] = []
    cancelled = asyncio.Event()

    async def duty() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    keep = asyncio.create_task(a.keep(on_loss=lambda: lost.append(True)))
    work = asyncio.create_task(a.while_held(duty))
    try:
        await until(lambda: a.held)
        await redis.set(keyspace.lease("follow", ASTERISK), "9 someone-else:1:1", px=60_000)  # type: ignore[attr-defined]
        await asyncio.wait_for(cancelled.wait(), 5)
        assert lost == [True] and not a.held and a.token == 0
    finally:
        keep.cancel()
        work.cancel()
        await asyncio.gather(keep, work, return_exceptions=True)


async def test_a_graceful_stop_releases_the_lease_and_the_next_engine_takes_it_at_once(redis: object) -> None:
    a, b = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    assert await a.acquire()
    await a.release()
    assert not a.held
    assert await b.acquire() and b.token == 2


RECEIVED = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc).astimezone().isoformat()


async def test_a_ticket_write_under_a_stale_token_is_refused_and_dropped_and_the_holders_write_lands(
    redis: object, redis_url: str, tmp_path: Path,
) -> None:
    old, new = lease(redis, "host:4573:1"), lease(redis, "host:4574:2")
    paused = TicketStore(redis_url, tmp_path / "a", name="a", retention_days=30, caller_key=CALLER_KEY)
    holder = TicketStore(redis_url, tmp_path / "b", name="b", retention_days=30, caller_key=CALLER_KEY)
    try:
        assert await old.acquire()
        stale_token = old.token
        paused.fenced_by(old.token_key, lambda: stale_token)  # paused: it still believes it holds token 1
        holder.fenced_by(new.token_key, new.fence)
        t = Ticket(linkedid="9.1", line="12345", caller="13900000001", received=RECEIVED)
        await paused.write(t, "opened")  # while it really held the lease: lands
        await paused.drain()
        await until_expired(redis)  # the old holder is paused: it renews nothing
        assert await new.acquire()  # the other engine takes over
        t.disposition = "abandoned_queue"
        await paused.write(t, "closed")  # the old holder wakes up and writes under token 1
        visit = QueueVisit("general", RECEIVED, RECEIVED, "abandoned", 30.0, "")
        paused.write_visit_nowait(t.linkedid, "queue:general:1",
                                  kpi.visit_increments(t, visit, final=True, keep_days=400))
        await paused.drain()
        assert await paused.phases("9.1") == {"opened"}  # refused: no close, no KPI count
        assert [f["event"] for _id, f in await paused.redis.xrange(keyspace.TICKET_EVENTS)] == ["opened"]
        assert not paused.journal.exists() and paused.backlog == 0  # dropped, never retried
        assert not paused.bad_file.exists()
        assert await paused.redis.smembers(keyspace.KPI_DIMENSIONS) == set()  # the visit was not counted
        t.disposition = "abandoned_queue"
        await holder.write(t, "closed")  # the new holder reconciles the call: its write lands
        await holder.drain()
        assert await holder.phases("9.1") == {"opened", "closed"}
        stored = await holder.get("9.1")
        assert stored is not None and stored.disposition == "abandoned_queue"
    finally:
        await paused.close()
        await holder.close()



async def test_a_holder_that_loses_redis_acts_on_in_doubt_and_keeps_its_token_when_redis_returns_empty_and_nobody_else_takes_it(
    tmp_path: Path,
) -> None:
    port = PortAllocator().one()
    proc = start_redis(port, tmp_path)
    client = redis_client(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    a = Lease(client, "follow", ASTERISK, "host:4573:1", ttl=TTL, renew_every=2 * RENEW)
    lost: list[bool] = []
    keep = asyncio.create_task(a.keep(on_loss=lambda: lost.append(True)))
    # another engine, waiting, and trying more often than the holder renews: it must not take the
    # lease the outage emptied (a failover's promoted replica may not have it), or the holder's
    # journaled writes would all be dropped
    b = Lease(client, "follow", ASTERISK, "host:4574:2", ttl=TTL, renew_every=RENEW / 3)
    gained: list[int] = []
    other: asyncio.Task[None] | None = None
    try:
        await until(lambda: a.held)
        other = asyncio.create_task(b.keep(on_gain=gained.append))  # once a holds it
        proc.kill()
        proc.wait()
        await until(lambda: a.in_doubt)
        assert a.held and a.fence() == 1  # Redis is down: it keeps following, its writes journaled under token 1
        proc = start_redis(port, tmp_path)  # back without the data (no persistence)
        await until(lambda: not a.in_doubt)
        assert a.held and a.token == 1 and lost == []  # nobody drew a token meanwhile: the same lease
        await asyncio.sleep(2 * (TTL + RENEW))  # b's hold-back is over: the lease is renewed, not free
        assert a.held and a.token == 1 and lost == [] and gained == [] and not b.held
        assert await client.get(keyspace.lease_token("follow", ASTERISK)) == "1"  # the counter is back at it
        status = await lease_status(client, ASTERISK)
        assert status["follow"].holder == "host:4573:1"
    finally:
        for task in (keep, other):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (keep, other) if t is not None), return_exceptions=True)
        await client.aclose()
        proc.kill()
        proc.wait()


async def test_an_engine_restarted_after_a_crash_takes_its_dead_predecessors_lease_at_once_and_no_one_elses(
    redis: object,
) -> None:
    dead = {111}
    crashed = lease(redis, "host:4573:111")
    assert await crashed.acquire()  # then SIGKILLed: the key stays for its TTL
    other_slot = Lease(redis, "follow", ASTERISK, "host:4574:222", ttl=60, alive=lambda pid: pid not in dead)  # type: ignore[arg-type]
    assert not await other_slot.acquire()  # another engine's slot: it waits out the TTL
    restarted = Lease(redis, "follow", ASTERISK, "host:4573:333", ttl=60, alive=lambda pid: pid not in dead)  # type: ignore[arg-type]
    assert await restarted.acquire() and restarted.token == 2  # same host and port, its pid is gone: at once
    alive_twin = Lease(redis, "follow", ASTERISK, "host:4573:444", ttl=60, alive=lambda pid: True)  # type: ignore[arg-type]
    assert not await alive_twin.acquire()  # a holder whose pid still runs is never taken over


async def test_a_token_no_replica_confirms_is_not_acted_on_and_a_confirmed_one_is(redis: object) -> None:
    """Behind Sentinel a promoted replica may not have the lease a dying master gave: the engine
    acts only on a token a replica holds (a lone redis-server has none, so WAIT confirms nothing)."""
    from ivr.store.failover import confirm

    unconfirmed = Lease(redis, "follow", ASTERISK, "host:4573:1", ttl=TTL, renew_every=RENEW,  # type: ignore[arg-type]
                        confirm=lambda: confirm(redis, 1, 50))  # type: ignore[arg-type]
    assert not await unconfirmed.acquire() and unconfirmed.token == 0 and not unconfirmed.held
    confirmed = Lease(redis, "follow", ASTERISK, "host:4573:1", ttl=TTL, renew_every=RENEW,  # type: ignore[arg-type]
                      confirm=lambda: confirm(redis, 0, 50))  # type: ignore[arg-type]
    assert await confirmed.acquire() and confirmed.token == 2  # the same engine takes it again, a new token


async def test_the_tokens_an_engine_takes_in_one_tick_wait_for_one_replica_confirmation_and_none_counts_without_it(
    redis: object,
) -> None:
    """A lone redis-server has no replica: WAIT for one confirms nothing, so no lease is held."""
    from ivr.store.failover import confirm

    confirmations: list[int] = []

    def counted(replicas: int) -> Callable[[], Awaitable[None]]:
        async def confirming() -> None:
            confirmations.append(replicas)
            await confirm(redis, replicas, 50)  # type: ignore[arg-type]
        return confirming

    for replicas, identity in ((1, "host:4573:1"), (0, "host:4574:2")):
        check = counted(replicas)
        leases = [Lease(redis, duty, ASTERISK, identity, ttl=TTL, renew_every=RENEW, confirm=check)  # type: ignore[arg-type]
                  for duty in DUTIES]
        keep = asyncio.create_task(keep_leases([(lease, lambda _t: None, lambda: None) for lease in leases]))
        try:
            await until(lambda r=replicas: r in confirmations)  # type: ignore[misc]
            if replicas:  # not confirmed: taken in Redis, never acted on
                assert not any(lease.held for lease in leases)
            else:
                await until(lambda held=leases: all(lease.held for lease in held))  # type: ignore[misc]
                assert confirmations.count(0) == 1  # one WAIT for the three tokens of that tick
        finally:
            keep.cancel()
            await asyncio.gather(keep, return_exceptions=True)


async def test_an_engine_standing_by_tries_again_as_the_holders_lease_expires_not_at_its_next_regular_tick(
    redis: object,
) -> None:
    """The holder took the lease and never renews it (it died); the other engine's regular tick
    is 30 s away, yet it holds the lease just after the TTL: it woke when the lease expired."""
    a = Lease(redis, "follow", ASTERISK, "host:4573:1", ttl=0.5, renew_every=30)  # type: ignore[arg-type]
    b = Lease(redis, "follow", ASTERISK, "host:4574:2", ttl=0.5, renew_every=30)  # type: ignore[arg-type]
    assert await a.acquire()
    keep = asyncio.create_task(b.keep())
    try:
        await until(lambda: b._expires_at > 0, timeout=5, interval=0.01)  # b tried once: held by a
        assert not b.held
        await until(lambda: b.held, timeout=5, interval=0.01)  # not after 30 s
        assert b.token == 2
    finally:
        keep.cancel()
        await asyncio.gather(keep, return_exceptions=True)
