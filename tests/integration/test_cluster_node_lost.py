"""Issue 20's done-when on the cluster bed: node A SIGKILLed with citizens in its menus and its
queue, its engines left running ("engines alive, node dead") or killed with it.

One bed of 2 nodes × 2 engines, two Kamailio proxies, Redis behind Sentinel, the carrier played by
sipp. The callers are put on node A by holding node B at ``maxcalls`` while they arrive (B answers
503 and the proxy moves each INVITE to A; B keeps no ticket of them), and wait there: A's seats are
logged in yet (the general queue is 7×24: callers join it empty and stay). After the SIGKILL: new
calls are answered by node B (the seconds printed); the node-gone duty closes every ticket of A once
as ``node_lost`` (counts and KPIs match) while B's calls go on untouched; then the seats log in once,
through the wish (node B's applier adds them), and each caller the policy names is called back by
node B's callback worker: its stand-in answered by a seat's phone (one per seat, registered at the
proxies), the citizen rung through B's ``pstn`` trunk (``sip.pstn_contact``) at the carrier's
gateway (a sipp that answers every call and logs whom it was for): once each; a caller whose number
may not be dialed (110) gets none."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.store import keyspace
from queues import kpi
from testbed.calls import closed_ticket, followed_since, for_caller, hang_up_all, ticket_events, until
from testbed.cluster import ClusterBed
from testbed.cluster_calls import Carrier, current_calls, fill_node, node_of
from testbed.cluster_seats import general_seats, SeatPhone, log_in, log_out, members, seat_phones
from testbed.ports import PortAllocator
import cluster_fixtures
from testbed.pytest_plugin import kept_logs
from testbed.sipp import Sipp
from testbed.sipp.gateway import called, carrier_gateway
from tickets.store import TicketStore

# the fixtures every test on a cluster bed uses (on this module's `cluster`)
tickets, carrier, amis = cluster_fixtures.tickets, cluster_fixtures.carrier, cluster_fixtures.amis

# each node's cap: node A takes the 21 callers, node B is held at it while they arrive; then B carries
# the new calls and the 20 callbacks, whose stand-ins hold two of its calls each while they wait
# (both halves of the Local channel run the dialplan): 4 + 40 < 60
MAXCALLS = 60
QUEUED, IN_MENUS = 10, 10  # callers dialing 12345 (the general queue, nobody logged in) and 8000 (the demo menus)
# a caller ID the platform must never dial (one per test: each caller has one ticket): closed like
# the others, no callback
UNCALLABLE = {False: "110", True: "119"}
PROBES = 4  # new calls placed at the SIGKILL

_ports = PortAllocator()


@pytest.fixture(scope="module")
def cluster(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterBed]:
    # the 20 callbacks take turns at the 8 seats: a wrap-up of 2 s (5 in config/) between turns
    config = cluster_fixtures.with_wrapup(config_dir, tmp_path_factory.mktemp("lost-deployment"), 2)
    bed = ClusterBed(config, nodes=2, engines=2, sentinel=True, name=f"lost-{os.getpid()}", maxcalls=MAXCALLS)
    with bed.running(kept_logs("testbed-logs-node-lost")) as running:
        yield running


@pytest.fixture(autouse=True)
async def node_a(cluster: ClusterBed, tickets: TicketStore) -> None:
    """Node A up, followed by its engines: started again after a test killed it (before the AMI
    sessions connect: autouse)."""
    a = cluster.nodes[0]
    assert a.state
    engines = [i for i in range(a.state.engines) if not a.engine_running(i)]
    if a.state.asterisk_pid and not engines:
        return
    since = time.time()
    if not a.state.asterisk_pid:
        await asyncio.to_thread(cluster.restart_node, 0)
    for index in engines:
        await asyncio.to_thread(a.start_engine, index=index)
    await followed_since(tickets, a.state, since, timeout=60)  # reconciled with the empty node: nothing to close


@pytest.fixture
async def gateway(cluster: ClusterBed, tmp_path: Path) -> AsyncIterator[Sipp]:
    """The carrier's gateway on node B's ``pstn_contact`` port: answers each callback to a citizen."""
    st = cluster.nodes[1].state
    assert st
    peer = await carrier_gateway(tmp_path, port=st.pstn_port, media_port=_ports.block(4), name="gateway-b")
    yield peer
    await peer.stop()


@pytest.fixture
async def seats(cluster: ClusterBed, tmp_path: Path, amis: list[AmiClient]) -> AsyncIterator[dict[str, SeatPhone]]:
    """Every general seat's one phone, registered at the proxies, answering each call and hanging up after a
    second; nobody logged in. After the test every seat logs out (on node B, the node that lives)."""
    phones = await seat_phones(cluster, tmp_path, general_seats(cluster, 1), talk_ms=1000)
    yield phones
    await log_out(cluster, phones, node=1)
    await until(lambda: _no_members(amis[1]), 20)
    for p in phones.values():
        await p.close()


async def general_today(tickets: TicketStore) -> dict[str, int]:
    report = await tickets.kpi_report(kpi.standard_windows(datetime.now().astimezone())[0])
    counts = report["queues"].get("general") or {}
    return {k: int(counts.get(k, 0)) for k in kpi.COUNTERS}


@pytest.mark.timeout(600)  # a cluster, 21 callers in place, the close, 20 callbacks through 8 seats
@pytest.mark.parametrize("engines_too", [False, True], ids=["engines-alive", "engines-killed"])
async def test_given_node_a_killed_with_callers_in_its_menus_and_queue_then_b_answers_and_each_is_closed_and_called_back_once(
    cluster: ClusterBed, carrier: Carrier, amis: list[AmiClient], tickets: TicketStore,
    gateway: Sipp, seats: dict[str, SeatPhone], engines_too: bool,
) -> None:
    """``engines_too``: A's engines SIGKILLed with it (a power cut of the host), else they keep
    running without their Asterisk (the duty must tell "engines alive, node dead")."""
    a, uncallable = cluster.nodes[0], UNCALLABLE[engines_too]
    assert a.state
    assert not await members(amis[0]) and not await members(amis[1])  # nobody answers: A's callers wait
    queued = [carrier.next_caller() for _ in range(QUEUED)]
    in_menus = [carrier.next_caller() for _ in range(IN_MENUS)]
    callers = [*queued, *in_menus, uncallable]
    joined = [amis[0].wait_for("QueueCallerJoin", for_caller(c)) for c in queued]
    menus = [amis[0].wait_for("AGIExecStart", for_caller(c)) for c in [*in_menus, uncallable]]

    # node B full while they arrive: the proxy moves each INVITE that B refuses (503) to A
    await fill_node(amis[1], MAXCALLS)
    batch, _ = await carrier.calls(len(callers), hold_ms=300_000, rate=10, callers=callers,
                                   dialed_each=["12345"] * QUEUED + ["8000"] * (IN_MENUS + 1))
    await asyncio.wait_for(asyncio.gather(*menus, *joined), 90)
    await hang_up_all(amis[1])  # B free again
    await until(lambda: _idle(amis[1]), 30)
    ids = {c: (await until(lambda c=c: tickets.recent_for_caller(c, 0), 30))[0].linkedid  # type: ignore[misc]
           for c in callers}
    assert {node_of(cluster, i) for i in ids.values()} == {"ast-a"}  # every one on A, and B kept none
    # what A's live follower published: the queued callers waiting, the others still in the menus
    await until(lambda: _waiting(tickets, [ids[c] for c in queued]), 30)
    assert not await _any_waiting(tickets, [ids[c] for c in [*in_menus, uncallable]])
    before = await general_today(tickets)
    step(f"{len(callers)} callers on ast-a ({QUEUED} waiting, {IN_MENUS + 1} in the menus); killing ast-a")

    # node A's Asterisk SIGKILLed (a crash), or its whole host (its engines too)
    probes = [carrier.next_caller() for _ in range(PROBES)]
    up_at: dict[str, float] = {}
    amis[1].on("Newstate", lambda e: up_at.setdefault(e["CallerIDNum"], time.monotonic())
               if e.get("CallerIDNum") in probes and e.get("ChannelStateDesc") == "Up" else None)
    answered: Counter[str] = Counter()
    stand_ins: list[str] = []
    amis[1].on("UserEvent", lambda e: answered.update([e["Of"]])
               if e.get("UserEvent") == "IvrCallback" and e.get("Stage") == "answered" else None)
    amis[1].on("QueueCallerJoin", lambda e: stand_ins.append(e.get("Channel", ""))
               if e.get("Channel", "").startswith("Local/cb@ivr-callback-queue") else None)
    killed, killed_wall = time.monotonic(), time.time()
    cluster.kill_node(0)
    if engines_too:
        for index in range(a.state.engines):
            a.kill_engine(index)
    await batch.stop()  # the carrier's port, for the new calls (the dead calls' media is gone anyway)
    probe_sipp, _ = await carrier.calls(PROBES, hold_ms=30_000, rate=20, callers=probes)
    await until(lambda: len(up_at) == PROBES, 30)
    reached_b = sorted(up_at[c] - killed for c in probes)

    step(f"{PROBES} new calls answered by ast-b")
    closed = {c: await closed_ticket(tickets, c, timeout=90) for c in callers}
    step(f"{len(closed)} tickets closed")
    closed_after = time.time() - killed_wall
    probe_ids = {c: (await until(lambda c=c: tickets.recent_for_caller(c, 0), 30))[0].linkedid  # type: ignore[misc]
                 for c in probes}
    assert {node_of(cluster, i) for i in probe_ids.values()} == {"ast-b"}
    for linkedid in probe_ids.values():  # B's calls, up through the close, are not A's to close
        assert "closed" not in await tickets.phases(linkedid)
    for c, t in closed.items():
        assert (t.disposition, t.closed_by, t.hangup_by) == ("node_lost", "node", "system"), (c, t.disposition)
        assert t.hangup_cause == "lost with its Asterisk node ast-a"
        events = await ticket_events(tickets.redis, t.linkedid)
        assert events.count("opened") == 1 and events.count("closed") == 1, events
    for c in queued:
        assert [v.outcome for v in closed[c].queue_visits] == ["node_lost"] and closed[c].queue == "general"
    for c in [*queued, *in_menus]:
        assert closed[c].callback and closed[c].callback["status"] == "pending", closed[c].callback
    refused = closed[uncallable].callback
    assert refused and refused["status"] == "refused" and refused.get("reason"), refused
    after = await general_today(tickets)
    assert after["offered"] - before["offered"] == QUEUED and after["node_lost"] - before["node_lost"] == QUEUED
    assert after["answered"] == before["answered"] and after["abandoned"] == before["abandoned"]

    # the callbacks: node B's worker, the seats (logged in now, on B, the node that lives: its
    # applier adds them), B's trunk to the carrier's gateway; once each
    await log_in(cluster, [amis[1]], list(seats), node=1)
    step(f"{len(seats)} seats logged in (the wish, applied by ast-b)")
    callable_ids = {ids[c]: c for c in [*queued, *in_menus]}
    await until(lambda: set(answered) == set(callable_ids), 180)
    step(f"{len(answered)} callbacks answered")
    done = {c: await until(lambda c=c: _called_back(tickets, ids[c]), 60)  # type: ignore[misc]
            for c in [*queued, *in_menus]}
    assert sorted(called(gateway)) == sorted(callable_ids.values())  # each citizen rung once, 110 never
    assert all(n == 1 for n in answered.values()) and len(stand_ins) == len(callable_ids)
    assert all(p.most_at_once() == 1 for p in seats.values())  # no seat's phone held two calls
    for t in done.values():
        assert t.disposition == "node_lost" and [a["result"] for a in t.callback["attempts"]] == ["ANSWER"]
    assert not await tickets.redis.hexists(keyspace.CALLBACKS, ids[uncallable])

    # B's own calls end as B's: closed by B's follower, not lost
    assert await probe_sipp.wait(90) == 0, probe_sipp.output()
    for c in probes:
        t = await closed_ticket(tickets, c, timeout=60)
        assert t.disposition != "node_lost" and t.closed_by == "ami", (t.disposition, t.closed_by)
    print(f"\nnode ast-a SIGKILLed ({'and' if engines_too else 'but not'} its 2 engines) with {len(callers)} callers: "
          f"{QUEUED} waiting in q-general, {IN_MENUS + 1} in the 8000 menus\n"
          f"  {'new calls answered by ast-b':<44} {PROBES}, {reached_b[0]:.2f}-{reached_b[-1]:.2f} s after the kill\n"
          f"  {'tickets closed node_lost (once each)':<44} {len(closed)}, all by {closed_after:.1f} s after the kill\n"
          f"  {'KPI general: offered / node_lost (delta)':<44} {after['offered'] - before['offered']} / "
          f"{after['node_lost'] - before['node_lost']}\n"
          f"  {'callbacks answered at the gateway (B pstn)':<44} {len(called(gateway))} of {len(callable_ids)} "
          f"callable; {uncallable}: {refused.get('reason')}\n"
          f"  {'ast-b calls through the close':<44} {PROBES}, closed by ast-b's follower, none node_lost")


def step(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


async def _idle(ami: AmiClient) -> bool:
    return await current_calls(ami) == 0


async def _waiting(tickets: TicketStore, linkedids: list[str]) -> bool:
    return all([await tickets.redis.hexists(keyspace.QUEUE_WAITING, i) for i in linkedids])


async def _no_members(ami: AmiClient) -> bool:
    return not await members(ami)


async def _any_waiting(tickets: TicketStore, linkedids: list[str]) -> bool:
    return any([await tickets.redis.hexists(keyspace.QUEUE_WAITING, i) for i in linkedids])


async def _called_back(tickets: TicketStore, linkedid: str) -> Any:
    t = await tickets.get(linkedid)
    return t if t and t.callback and t.callback.get("status") == "answered" else None
