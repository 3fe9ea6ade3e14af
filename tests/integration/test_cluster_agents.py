"""Issue 20, agents across nodes on a real cluster bed (docs/cluster.md "Agents across nodes"): two
Asterisk nodes rendered with ``--node``, one engine each (each node's seat applier), two Kamailio
proxies running the generated files (registrar, seat lock), the carrier and the seats' phones played
by sipp. Each seat is ONE phone registered with digest at a proxy; the nodes' seat AORs list the
proxies; a seat logs in once (``ivr agents login``: the wish) and every node's app_queue has it.

How a citizen is put on a given node: the proxies balance by call load (dispatcher algorithm 10,
counted per proxy), so with citizen 1 up on one node through proxy 1, the next citizen through
proxy 1 goes to the other node. Each test checks where each citizen landed (``QueueCallerJoin`` on
that node) rather than assuming it. The last three break and heal the bed: proxy 1 stopped (the
seat's phone fails over to proxy 2; proxy 1 started again after), a node SIGKILLed (the node-gone
duty clears the seat's state it left on the other node) and one killed and restarted (it resyncs
from the wish and its peer); each starts what it stopped again.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

import cluster_fixtures

from ivr.ami.client import AmiClient
from queues.wish import WRAPUP_REASON
from testbed.calls import closed_ticket, hang_up_all, until
from testbed.cluster import ClusterBed
from testbed.cluster_calls import Carrier, node_ami, node_of
from testbed.cluster_seats import (contact_paths, dispatches_to, ivr, keepalive_answered, log_in, member_status,
                                   members, new_phone, proxy_path, resynced_members, seat_event, seat_phones,
                                   set_dispatch)
from testbed.cluster_node import PHONES
from testbed.ports import PortAllocator
from queues.agents import Seat
from queues.store import SeatStore
from testbed.cluster_seats import log_out  # the seats' cleanup, in-process
from testbed.pytest_plugin import kept_logs
from queues.order import node_by_prefix, order_inversions, seat_collisions
from tickets.store import TicketStore

pytestmark = pytest.mark.timeout(300)

WRAPUP_S = 2  # the general queue's wrap-up here (5 in config/): the 100 calls take less time
HUNDRED = 100
CREW = ["agent1001", "agent1002", "agent1003", "expert2001", "expert2002"]


tickets, carrier = cluster_fixtures.tickets, cluster_fixtures.carrier  # the cluster tests' shared fixtures


@pytest.fixture(scope="module")
def cluster(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterBed]:
    config = cluster_fixtures.with_wrapup(config_dir, tmp_path_factory.mktemp("agents-deployment"), WRAPUP_S)
    bed = ClusterBed(config, nodes=2, engines=1, name=f"agents-{os.getpid()}")
    with bed.running(kept_logs("testbed-logs-agents")) as running:
        yield running


@pytest.fixture
async def amis(cluster: ClusterBed) -> AsyncIterator[list[AmiClient]]:
    """A read-all AMI session on each node; calls left up are hung up and seats logged out after."""
    clients = [node_ami(cluster, i) for i in range(len(cluster.nodes))]
    for c in clients:
        await c.connect()
    yield clients
    for index, c in enumerate(clients):
        if not c.connected:  # its node was killed and started again: a new session
            clients[index] = c = node_ami(cluster, index)
            await c.connect()
        await hang_up_all(c)
    await log_out(cluster, CREW)
    for c in clients:
        await until(lambda c=c: _no_members(c), 20)
        c.close()


async def _no_members(ami: AmiClient) -> bool:
    return not any(seat in CREW for seat in await members(ami))


async def set_paused(cluster: ClusterBed, amis: list[AmiClient], seat: str, paused: bool, node: int = 0) -> None:
    changed = [ami.wait_for("QueueMemberPause", seat_event(seat, Queue="q-general", Paused="1" if paused else "0"))
               for ami in amis]
    await ivr(cluster, "agents", *(["pause", seat, "--reason", "1"] if paused else ["unpause", seat]), node=node)
    await asyncio.wait_for(asyncio.gather(*changed), 20)


def joined(ami: AmiClient, callers: list[str]) -> asyncio.Future[Any]:
    return ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") in callers)


async def test_login_once_every_node_pause_and_logout_on_every_node(
    cluster: ClusterBed, amis: list[AmiClient], tmp_path: Path,
) -> None:
    seat = "agent1003"
    phones = await seat_phones(cluster, tmp_path, [seat])
    try:
        await _login_pause_logout(cluster, amis, seat)
    finally:
        for p in phones.values():
            await p.close()


async def _login_pause_logout(cluster: ClusterBed, amis: list[AmiClient], seat: str) -> None:
    await log_in(cluster, amis, [seat], command=True)
    for ami in amis:
        # reachable at every node: its contacts are the proxies, which pass the nodes' probes on to
        # its registered phone
        await until(lambda ami=ami: member_status(ami, seat, "1"), 20)
        assert (await members(ami))[seat]["general"]["Paused"] == "0"
    await set_paused(cluster, amis, seat, True)
    for ami in amis:
        assert (await members(ami))[seat]["general"]["PausedReason"] == "小休"
    removed = [ami.wait_for("QueueMemberRemoved", seat_event(seat, Queue="q-general")) for ami in amis]
    await ivr(cluster, "agents", "logout", seat)
    await asyncio.wait_for(asyncio.gather(*removed), 20)
    for ami in amis:
        assert seat not in await members(ami)


async def _waited(ami: AmiClient, caller: str, seconds: int) -> bool:
    listing = await ami.action({"Action": "QueueStatus", "Queue": "q-general"}, as_list=True)
    return any(e.get("Event") == "QueueEntry" and e.get("CallerIDNum") == caller and int(e.get("Wait", 0)) >= seconds
               for e in listing)


async def talking_and_waiting(carrier: Carrier, amis: list[AmiClient]) -> tuple[int, dict[str, Any], str]:
    """Two citizens from one sipp (the carrier's one address), 4 s apart: the first is up on its
    node when the second reaches the proxy, so call load sends the second to the other node. The
    only seat answers the first; returns (the node it talks on, its AgentConnect, the caller who
    waits on the other node)."""
    callers = [carrier.next_caller(), carrier.next_caller()]
    connected = [ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") in callers) for ami in amis]
    waiting = [joined(ami, callers) for ami in amis]
    await carrier.calls(2, callers=callers, hold_ms=300_000, rate=0.25)
    done, _ = await asyncio.wait(connected, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert done, "no citizen was connected to the seat"
    a = connected.index(done.pop())
    talk = connected[a].result()
    second = callers[1 - callers.index(talk["CallerIDNum"])]
    assert (await asyncio.wait_for(waiting[1 - a], 60))["CallerIDNum"] == second  # on the other node
    return a, dict(talk), second


async def test_talking_on_a_not_rung_by_b(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    seat = "agent1001"
    phones = await seat_phones(cluster, tmp_path, [seat])
    phone = phones[seat]
    rung: list[Any] = []
    for index, ami in enumerate(amis):
        ami.on("AgentCalled", lambda e, index=index: rung.append((index, e.get("CallerIDNum"))))
    try:
        await log_in(cluster, amis, [seat])
        a, talk, second = await talking_and_waiting(carrier, amis)
        b = 1 - a
        assert (await members(amis[b]))[seat]["general"]["Status"] == "2"  # B: in use (the seat talks on A)
        await until(lambda: _waited(amis[b], second, 4), 30)  # B has had citizen 2 waiting 4 s
        assert (b, second) not in rung  # B never offered it the seat
        assert len(phone.offers()) == 1  # and the phone got no second INVITE
        wrapup = amis[b].wait_for("QueueMemberPause", seat_event(seat, Paused="1", PausedReason=WRAPUP_REASON))
        offered = amis[b].wait_for("AgentCalled", lambda e: e.get("CallerIDNum") == second)
        await amis[a].action({"Action": "Hangup", "Channel": talk["Channel"]})
        await asyncio.wait_for(offered, 30)  # B rings the seat once citizen 1 is gone
        early = not wrapup.done()
        assert cluster.state
        names = cluster.state.node_names  # B rang before its wrap-up pause landed (the race the design counts)
        print(f"\ncitizen 1 on {names[a]}, citizen 2 on {names[b]}; B rang the seat "
              f"{'BEFORE its wrap-up pause (an early offer)' if early else 'after its wrap-up pause ended'}")
        await until(lambda: len(phone.offers()) == 2, 20)
        assert phone.most_at_once() == 1
    finally:
        for p in phones.values():
            await p.close()


async def _free_everywhere(amis: list[AmiClient], seat: str) -> bool:
    """Logged in, not paused (its wrap-up over) and not in use, on every node."""
    rows = [(await members(ami)).get(seat, {}).get("general", {}) for ami in amis]
    return all(r.get("Paused") == "0" and r.get("Status") == "1" for r in rows)


ROUNDS = 2  # each round is a citizen through the 12345 menus on each node (~37 s); the next test forces the collision


async def test_simultaneous_offer(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    """A paused seat, a citizen waiting on each node, the seat unpaused: both nodes see it free in
    the same moment. The proxy lets one INVITE through; the other node's gets 486 (app_queue:
    ``AgentRingNoAnswer`` with ``RingTime`` 0) and tries again after ``retry``, once the seat is
    free again. Repeated; the collisions are printed: app_queue looks at a free seat once a second per
    waiting caller, so both nodes reaching the proxy within the few ms the device state takes to
    cross is rare here; the next test makes them ring at once."""
    seat = "agent1001"
    phones = await seat_phones(cluster, tmp_path, [seat], talk_ms=1500)
    phone = phones[seat]
    events: list[Any] = []
    for ami in amis:
        ami.on("AgentRingNoAnswer", events.append)
        ami.on("AgentConnect", events.append)
    try:
        await log_in(cluster, amis, [seat])
        per_round = []
        for n in range(ROUNDS):
            await until(lambda: _free_everywhere(amis, seat), 30)
            await set_paused(cluster, amis, seat, True)
            callers = [carrier.next_caller(), carrier.next_caller()]
            waiting = [joined(ami, callers) for ami in amis]
            sipp, _ = await carrier.calls(2, callers=callers, hold_ms=300_000, rate=1)
            queued = await asyncio.wait_for(asyncio.gather(*waiting), 60)
            assert {e["CallerIDNum"] for e in queued} == set(callers)  # one citizen waiting on each node
            start = len(events)
            await set_paused(cluster, amis, seat, False)
            await until(lambda start=start, callers=callers: set(callers) == {
                e.get("CallerIDNum") for e in events[start:] if e.get("Event") == "AgentConnect"}, 60)
            round_events = events[start:]
            missed = [e for e in round_events if e.get("Event") == "AgentRingNoAnswer"]
            assert all(e.get("RingTime") == "0" for e in missed), missed  # only the proxy's 486, never a ring
            per_round.append(len(missed))
            for ami in amis:
                await hang_up_all(ami)
            assert await sipp.wait(60) == 0, sipp.output()
            assert len(phone.offers()) == 2 * (n + 1)  # each citizen reached the phone once
        assert phone.most_at_once() == 1  # the phone never held two calls
        print(f"\nsimultaneous offers: {ROUNDS} rounds, collisions (486 from the proxy) per round {per_round}")
    finally:
        for p in phones.values():
            await p.close()


@pytest.mark.timeout(900)
async def test_a_hundred_calls_through_the_proxies_answered_by_seats_that_logged_in_once(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tickets: TicketStore, tmp_path: Path,
) -> None:
    """Issue 20's done-when: 100 citizens through the proxies, spread over both nodes (35-65 %
    each), 100 tickets with unique numbers, each answered by one of five seats that logged in once
    (one ``QueueMemberAdded`` per seat, queue and node); printed: per-node counts, collisions,
    order inversions per queue (docs/cluster.md "Longest waiting caller across nodes")."""
    assert cluster.state
    phones = await seat_phones(cluster, tmp_path, CREW, talk_ms=1000)
    events: list[Any] = []
    for ami in amis:
        ami.on("AgentRingNoAnswer", events.append)
        ami.on("QueueMemberAdded", lambda e, port=ami: events.append({**e, "Node": str(id(port))}))
    try:
        await log_in(cluster, amis, CREW)
        sipp, callers = await carrier.calls(HUNDRED, hold_ms=600_000, rate=2)
        found = []
        for caller in callers:
            found.append(await closed_ticket(tickets, caller, timeout=400))
        assert await sipp.wait(120) == 0, sipp.output()
        names = cluster.state.node_names
        counts = Counter(node_of(cluster, t.linkedid) for t in found)
        assert len({t.number for t in found}) == HUNDRED and all(t.number for t in found)
        assert all(t.agent in CREW and t.answered for t in found), [(t.number, t.agent, t.disposition) for t in found
                                                                   if t.agent not in CREW or not t.answered]
        for name in names:
            assert 0.35 <= counts[name] / HUNDRED <= 0.65, counts
        added = Counter((e["Node"], e["Interface"], e["Queue"]) for e in events if e.get("Event") == "QueueMemberAdded")
        assert set(added.values()) == {1}, added  # logged in once: never added again on any node
        assert sum(len(p.offers()) for p in phones.values()) == HUNDRED
        assert all(p.most_at_once() == 1 for p in phones.values())
        # every seat answers: each AgentRingNoAnswer is an offer the proxy turned away (486), and the
        # tickets carry exactly those as collisions, never as a seat that did not answer
        turned_away = Counter(e["Interface"].removeprefix("PJSIP/") for e in events if e.get("Event") == "AgentRingNoAnswer")
        assert all(int(e["RingTime"]) <= 1000 for e in events if e.get("Event") == "AgentRingNoAnswer"), events
        assert seat_collisions(found) == dict(turned_away)
        assert all(a.answered for t in found for a in t.agents_rung)
        order = order_inversions(found, node_by_prefix(names))
        by_seat = Counter(t.agent for t in found)
        print(f"\n{HUNDRED} calls: per node {dict(counts)}; per seat {dict(by_seat)}; collisions {dict(turned_away)}")
        for (day, queue), o in order.items():
            print(f"{day} queue {queue}: {o.answered} answered, {o.inverted} order inversions ({o.share:.0%}), "
                  f"largest jump {o.largest_jump_s:.3f} s")
    finally:
        for p in phones.values():
            await p.close()


RACES = 5


async def test_both_nodes_ring_the_idle_seat_at_once_one_call_reaches_it_the_other_gets_486(
    cluster: ClusterBed, amis: list[AmiClient], tmp_path: Path,
) -> None:
    """The race itself, on the real nodes and proxies: each node dials the seat in the same
    instant (two AMI ``Originate``s released together, as two app_queues would ring). Exactly one
    INVITE reaches the phone in every round, the other node gets Busy (the proxy's 486, logged)."""
    assert cluster.state
    seat = "agent1002"
    phones = await seat_phones(cluster, tmp_path, [seat], talk_ms=500)
    phone = phones[seat]
    logs = [cluster.proxy_log(i) for i in range(len(cluster.state.proxy_names))]
    busy_before = sum(_busy_lines(log, seat) for log in logs)
    try:
        for n in range(RACES):
            await until(lambda: _idle_everywhere(amis, seat), 30)
            # an Async Originate's reply ends with its OriginateResponse (Success: answered; Failure: busy)
            replies = await asyncio.gather(*(ami.action({
                "Action": "Originate", "Channel": f"PJSIP/{seat}", "Application": "Wait", "Data": "1",
                "Async": "true", "Timeout": "10000"}, timeout=30) for ami in amis))
            results = sorted(reply[-1].get("Response", "") for reply in replies)
            assert results == ["Failure", "Success"], results
            await until(lambda n=n: len(phone.offers()) == n + 1 and phone.offers()[-1][2] is not None, 20)
        assert phone.most_at_once() == 1
        busy = sum(_busy_lines(log, seat) for log in logs) - busy_before
        assert busy >= RACES, busy  # each loser was turned away at the proxy
        print(f"\nraces: {RACES}, one call reached the phone each time; the proxy answered 486 {busy} times")
    finally:
        for p in phones.values():
            await p.close()


def _busy_lines(log: Path, seat: str) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if "486" in line and seat in line) \
        if log.exists() else 0


async def _idle_everywhere(amis: list[AmiClient], seat: str) -> bool:
    """No channel of the seat on any node (the last race's calls are over)."""
    for ami in amis:
        listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
        if any(e.get("Channel", "").startswith(f"PJSIP/{seat}-") for e in listing):
            return False
    return True


async def test_proxy_dies_seat_reregisters(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    """The proxy a logged-in seat's phone registered through is stopped. Proxy 2 knew the phone
    only through proxy 1 (the replicated contact's Path names proxy 1, dead now), and the nodes'
    first contact for the seat is proxy 1: nobody could reach the phone. Its next registration
    (the phone's refresh, brought forward) finds proxy 1 silent and registers at proxy 2, whose
    contact then has its own Path; the nodes, having found proxy 1 unreachable (qualify), dial
    proxy 2, and the next citizen (the carrier's secondary: proxy 2) is offered to the seat."""
    assert cluster.state
    seat = "agent1002"
    phones = await seat_phones(cluster, tmp_path, [seat])
    phone = phones[seat]
    dead = f"@127.0.0.1:{cluster.state.proxy_ports[0]}"
    unreachable = [ami.wait_for("ContactStatus", lambda e: e.get("AOR") == seat and dead in e.get("URI", "")
                                and e.get("ContactStatus") == "Unreachable") for ami in amis]
    try:
        assert phone.registered_at == 0
        await log_in(cluster, amis, [seat])
        await until(lambda: contact_paths(cluster, 1, seat), 10)  # replicated to proxy 2 (dmq_usrloc)
        assert await contact_paths(cluster, 1, seat) == [proxy_path(cluster, 0)]
        cluster.stop_proxy(0)
        start = time.monotonic()
        assert await phone.register() == 1  # proxy 1 silent: the phone's backup registrar took it
        failed_over = time.monotonic() - start
        assert await contact_paths(cluster, 1, seat) == [proxy_path(cluster, 1)]  # proxy 2 reaches it itself
        await asyncio.wait_for(asyncio.gather(*unreachable), 30)  # every node stopped dialing proxy 1
        unqualified = time.monotonic() - start
        caller = carrier.next_caller()
        connected = [ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller) for ami in amis]
        await carrier.calls(1, callers=[caller], hold_ms=300_000)
        done, _ = await asyncio.wait(connected, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert done, "the seat was not offered the citizen through proxy 2"
        talk = done.pop().result()
        assert talk["Interface"] == f"PJSIP/{seat}" and len(phone.offers()) == 1
        print(f"\nproxy 1 stopped: the phone registered at proxy 2 after {failed_over:.1f} s, both nodes found "
              f"proxy 1 unreachable after {unqualified:.1f} s; the seat took a citizen on "
              f"{cluster.state.node_names[connected.index(next(f for f in connected if f.done()))]} "
              f"{time.monotonic() - start:.1f} s after the stop")
    finally:
        if not cluster.proxies_alive()[0]:
            await asyncio.to_thread(cluster.start_proxy, 0)  # healed for the next tests
        for p in phones.values():
            await p.close()


async def test_node_killed_while_the_seat_talks_on_it_the_duty_frees_the_seat_on_b(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    """Node A SIGKILLed while the only seat talks on it, a citizen waiting on B. The agent hangs
    up: B still has the seat in use (A's last published state; remote state never expires — the
    control, read before the duty acts). The node-gone duty then publishes INVALID under A's
    entity id to B from its engine's address, and B offers the seat its caller."""
    assert cluster.state
    seat = "agent1001"
    phones = await seat_phones(cluster, tmp_path, [seat], talk_ms=5000)
    phone = phones[seat]
    killed = None
    try:
        await log_in(cluster, amis, [seat])
        a, _talk, second = await talking_and_waiting(carrier, amis)
        b = 1 - a
        offered = amis[b].wait_for("AgentCalled", lambda e: e.get("CallerIDNum") == second)
        cluster.kill_node(a)
        killed = a
        await until(lambda: phone.offers() and phone.offers()[0][2] is not None, 20)  # the agent hung up
        assert (await members(amis[b]))[seat]["general"]["Status"] == "2"  # control: B still has it in use
        assert not offered.done()
        await asyncio.wait_for(offered, 40)  # the duty cleared A's state on B: B offers the seat
        await until(lambda: len(phone.offers()) == 2, 20)
        print(f"\nnode {cluster.state.node_names[a]} killed while the seat talked on it: "
              f"{cluster.state.node_names[b]} offered the seat its caller after the node-gone duty")
    finally:
        for p in phones.values():
            await p.close()
        if killed is not None:
            await asyncio.to_thread(cluster.restart_node, killed)



async def test_node_restart_resyncs(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    """A seat talks on node B; node A's Asterisk is SIGKILLed and, while it is down, a second seat
    logs in and a third logs in and pauses (the wish, written on B's host): A never heard of them.
    A is started again: its applier (the follow lease holder, reconnected) puts every member and
    pause back from the wish, and A asks B for its device states (B's seat shows in use on A).
    Then a citizen on A (B out of the proxies' rotation for that call) is offered the free seat."""
    assert cluster.state
    a, b = 0, 1
    talker, free, paused = "agent1001", "agent1002", "agent1003"
    phones = await seat_phones(cluster, tmp_path, [talker, free])
    killed = out_of_rotation = False
    try:
        await log_in(cluster, amis, [talker])
        await amis[b].action({"Action": "Originate", "Channel": f"PJSIP/{talker}", "Application": "Wait",
                              "Data": "300", "Async": "true"})  # the seat talks on B
        await until(lambda: member_status(amis[b], talker, "2"), 30)
        cluster.kill_node(a)
        killed = True
        await log_in(cluster, [amis[b]], [free, paused], node=b)
        await set_paused(cluster, [amis[b]], paused, True, node=b)
        start = time.monotonic()
        await asyncio.to_thread(cluster.restart_node, a)
        killed = False
        booted = time.monotonic() - start
        amis[a].close()
        amis[a] = node_ami(cluster, a)  # the fixture's teardown uses this session
        await amis[a].connect()
        rows = await until(lambda: resynced_members(amis[a], talker, free, paused), 60)
        resynced = time.monotonic() - start
        assert set(rows) >= {talker, free, paused}
        await set_dispatch(cluster, b, "d")
        out_of_rotation = True
        for proxy in range(len(cluster.state.proxy_names)):  # A probed alive again by both proxies
            await until(lambda proxy=proxy: dispatches_to(cluster, proxy, a), 20)
        caller = carrier.next_caller()
        on_a = joined(amis[a], [caller])
        offered = amis[a].wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
        await carrier.calls(1, callers=[caller], hold_ms=300_000)
        await asyncio.wait_for(on_a, 60)
        assert (await asyncio.wait_for(offered, 60))["Interface"] == f"PJSIP/{free}"
        print(f"\n{cluster.state.node_names[a]} restarted (fully booted after {booted:.1f} s): members, pause "
              f"and the seat in use on {cluster.state.node_names[b]} back {resynced:.1f} s after the start; "
              f"its citizen offered {free}")
    finally:
        if out_of_rotation:
            await set_dispatch(cluster, b, "a")
        for p in phones.values():
            await p.close()
        if killed:
            await asyncio.to_thread(cluster.restart_node, a)


OFFLINE_WITHIN_S = PHONES.every + PHONES.timeout  # a node's next probe, unanswered (as on one node)
# the proxy's keepalive: silent for every + timeout at a round (each every), then usrloc's 10 s: well
# before the registration (refreshed each 20 s, 60 s long) would expire by itself
DROPPED_WITHIN_S = 3 * PHONES.every + math.ceil(PHONES.timeout) + 10
_ports = PortAllocator()


async def _seat_state(cluster: ClusterBed, seat: str) -> str:
    st = cluster.nodes[0].state
    assert st
    store = SeatStore(st.redis_url)
    try:
        data = (await store.all()).get(seat)
        return Seat.from_json(data).state(time.time()) if data else "none"
    finally:
        await store.close()


async def _everywhere(cluster: ClusterBed, amis: list[AmiClient], seat: str, status: str, state: str) -> bool:
    """``seat``'s general member has device ``status`` on every node, and the board (Redis) says ``state``."""
    return all([await member_status(ami, seat, status) for ami in amis]) and await _seat_state(cluster, seat) == state


async def _dropped_after(cluster: ClusterBed, proxy: int, seat: str) -> float:
    """Seconds until proxy ``proxy`` holds no contact for ``seat`` (its keepalive dropped it)."""
    start = time.monotonic()

    async def gone() -> bool:
        return not await contact_paths(cluster, proxy, seat)
    await until(gone, DROPPED_WITHIN_S + 5, interval=0.5)
    return time.monotonic() - start


async def _offered(amis: list[AmiClient], caller: str) -> dict[str, Any]:
    connected = [ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller) for ami in amis]
    done, pending = await asyncio.wait(connected, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for f in pending:
        f.cancel()
    assert done, f"citizen {caller} was connected to no seat"
    return dict(done.pop().result())


async def test_a_phone_that_dies_without_unregistering_is_offline_on_every_node_and_back_with_a_new_phone(
    cluster: ClusterBed, amis: list[AmiClient], carrier: Carrier, tmp_path: Path,
) -> None:
    """Issue 22 item 8 on a cluster (docs/seats.md "Phones that stop answering"): the logged-in seat
    rung first (penalty 0) loses its phone, killed without unregistering (its registration stays at
    the proxies). Within one probe (``phones.qualify``: every + timeout) every node has it unavailable
    and the board says 话机离线 (unreachable); the next citizen, on whichever node, is offered to the
    other seat (penalty 10) and the dead one is never rung. A new phone registers on the same account,
    at another address: every node finds it at its own next probe, and it answers the next citizen."""
    assert cluster.state
    dead, other = "agent1001", "expert2001"  # general penalty 0 and 10: the dead seat would be rung first
    phones = await seat_phones(cluster, tmp_path, [dead, other])
    rung: list[tuple[int, str]] = []
    for index, ami in enumerate(amis):
        ami.on("AgentCalled", lambda e, index=index: rung.append((index, e.get("Interface", ""))))
    phone = None
    dropping: asyncio.Task[float] | None = None
    try:
        await log_in(cluster, amis, [dead, other])
        await until(lambda: _everywhere(cluster, amis, dead, "1", "available"), 20)
        assert await contact_paths(cluster, 0, dead) == [proxy_path(cluster, 0)]  # registered through proxy 1
        await phones[dead].kill()
        killed = time.monotonic()
        dropping = asyncio.create_task(_dropped_after(cluster, 0, dead))
        await until(lambda: _everywhere(cluster, amis, dead, "5", "unreachable"), OFFLINE_WITHIN_S + 10)
        offline = time.monotonic() - killed
        assert offline <= OFFLINE_WITHIN_S + 1.5, f"unavailable on every node only after {offline:.1f} s"

        caller = carrier.next_caller()
        await carrier.calls(1, callers=[caller], hold_ms=300_000)
        talk = await _offered(amis, caller)
        assert talk["Interface"] == f"PJSIP/{other}", talk
        assert f"PJSIP/{dead}" not in {i for _, i in rung}, rung  # no node rang the dead phone
        for ami in amis:
            await hang_up_all(ami)
        dropped = await dropping
        assert dropped <= DROPPED_WITHIN_S, f"proxy 1 dropped the dead contact only after {dropped:.1f} s"

        phone = await new_phone(cluster, tmp_path, dead, _ports.one())  # the agent starts the softphone again
        registered = time.monotonic()
        await until(lambda: _everywhere(cluster, amis, dead, "1", "available"), PHONES.every + 10)
        back = time.monotonic() - registered
        assert back <= PHONES.every + PHONES.timeout + 1.5, f"available on every node only after {back:.1f} s"
        caller = carrier.next_caller()
        await carrier.calls(1, callers=[caller], hold_ms=300_000)
        talk = await _offered(amis, caller)
        assert talk["Interface"] == f"PJSIP/{dead}" and len(phone.offers()) == 1, talk
        # the live phone answers the proxy's keepalive (the dead one's went unanswered: dropped above)
        await until(lambda: keepalive_answered(cluster, phone.registered_at or 0, dead), PHONES.every + 5)
        print(f"\nphone of {dead} killed: unavailable on every node (话机离线) after {offline:.1f} s "
              f"(bound {OFFLINE_WITHIN_S:.0f} s), its citizen answered by {other}, its contact dropped by proxy 1 "
              f"after {dropped:.1f} s (bound {DROPPED_WITHIN_S} s); a new phone registered: available again after "
              f"{back:.1f} s and it answered the next citizen")
    finally:
        if dropping is not None:
            dropping.cancel()
        for p in [*phones.values(), *([phone] if phone else [])]:
            await p.close()
