"""Issue 20 item 5 on a real 2-node cluster bed: the desk, the transfer and the wallboard work
whichever node holds the call (docs/cluster.md "Whichever node holds the call").

A citizen calls through the proxy with node A disabled in both proxies' dispatchers (``dispatcher.
set_state d``: neither probes nor load bring it back), so the call lands on node B and a seat (one
phone registered at the proxies, logged in once) answers it from B. The desk page of that seat,
served by node A's engine, pops the call's ticket and transfers it to 12366: the tax sub-center's
gateway of node B (a port only B dials) takes the call and the ticket records the transfer,
answered. The wallboard of either engine shows the talking seat with B's AMI, and, with no seat
logged in, one caller waiting on each node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf.dispatcher import NODES_SET
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.kamrpc import call
from ivr.store import keyspace
from testbed.calls import hang_up_all, until
from testbed.cluster import ClusterBed
from testbed.console import ConsoleSite, bed_site, http_client, sign_in_http
from testbed.ports import PortAllocator
from testbed.pytest_plugin import kept_logs
from testbed.cluster_seats import ivr, log_in, members, seat_phones
from testbed.sipp import sip_peer
from tickets.store import TicketStore
import cluster_fixtures

tickets, carrier, amis = cluster_fixtures.tickets, cluster_fixtures.carrier, cluster_fixtures.amis
_ports = PortAllocator()


@pytest.fixture(scope="module")
def cluster(config_dir: Path) -> Iterator[ClusterBed]:
    bed = ClusterBed(config_dir, nodes=2, engines=1, name=f"desk-{os.getpid()}", maxcalls=30)
    with bed.running(kept_logs("testbed-logs-cluster-desk")) as running:
        yield running


@contextlib.asynccontextmanager
async def only_node(cluster: ClusterBed, index: int) -> AsyncIterator[None]:
    """New calls through either proxy go to node ``index``: the other is disabled in both
    dispatchers for the block, active again after."""
    assert cluster.state
    other = cluster.state.node_names[1 - index]

    async def set_state(state: str) -> None:
        for proxy in cluster.state.proxy_names:  # type: ignore[union-attr]
            socket = ctl_socket(str(cluster.kamailio_dir), proxy)
            [reply] = await call(socket, "dispatcher.list")
            [uri] = [d["URI"] for d in reply["RECORDS"]["SET"]["TARGETS"]["DEST"] if d["ATTRS"]["DUID"] == other]
            await call(socket, "dispatcher.set_state", state, NODES_SET, uri)

    await set_state("d")
    try:
        yield
    finally:
        await set_state("a")


def calling(caller: str) -> Callable[[Any], bool]:
    return lambda e: bool(e.get("CallerIDNum") == caller)


async def json_get(http: aiohttp.ClientSession, site: ConsoleSite, path: str) -> Any:
    async with http.get(site.url + path) as reply:
        assert reply.status == 200, (path, reply.status)
        return await reply.json()


async def board_until(site: ConsoleSite, check: Callable[[Any], bool], timeout: float = 30) -> Any:
    """The wallboard (``/wallboard.json``, as a supervisor) once ``check`` holds for it."""
    async with http_client() as http:
        await sign_in_http(http, site, site.account("supervisor"))

        last: list[Any] = [None]

        async def shown() -> Any:
            last[0] = board = await json_get(http, site, "/wallboard.json")
            return board if check(board) else None
        try:
            return await until(shown, timeout)
        except AssertionError:
            raise AssertionError(f"{site.url}: the wallboard stayed {last[0]}") from None


@pytest.fixture
async def seats(cluster: ClusterBed, amis: list[AmiClient], tmp_path: Path) -> AsyncIterator[list[str]]:
    """Every seat's phone registered at the proxies, answering and talking for a minute; each seat
    logged in once (through the wish: every node adds it), logged out after."""
    names = list(cluster.nodes[0].settings.agents)
    phones = await seat_phones(cluster, tmp_path, names, talk_ms=60_000)
    try:
        await log_in(cluster, amis, names)
        yield names
    finally:
        for seat in names:
            await ivr(cluster, "agents", "logout", seat)
        for p in phones.values():
            await p.close()


async def test_the_desk_on_node_a_pops_the_ticket_and_transfers_a_call_node_b_holds(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient], tickets: TicketStore, seats: list[str],
    tmp_path: Path,
) -> None:
    a, b = cluster.nodes
    assert a.state and b.state and cluster.state
    caller = carrier.next_caller()
    tax = await sip_peer(tmp_path, port=b.state.subcenter_ports["tax"], media_port=_ports.block(4), caller=caller,
                         mode="answer", talk_ms=3000, name="tax-b")
    try:
        connected = amis[1].wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
        async with only_node(cluster, 1):
            await carrier.calls(1, hold_ms=90_000, callers=[caller])
            event = await asyncio.wait_for(connected, 60)
        linkedid, agent = event["Linkedid"], event["Interface"].removeprefix("PJSIP/")
        assert linkedid.startswith(f"{cluster.state.node_names[1]}-")  # node B holds the call
        ticket = await until(lambda: tickets.get(linkedid), 30)

        site = bed_site(a.state)  # the console of node A's engine
        async with http_client() as http:
            csrf = await sign_in_http(http, site, site.account("agent", agent))

            async def popped() -> Any:
                desk = await json_get(http, site, f"/desk/{agent}/state")
                return desk if (desk["call"] or {}).get("linkedid") == linkedid and desk["seat"]["state"] == "talking" else None

            desk = await until(popped, 30)
            assert desk["call"]["stub"]["number"] == ticket.number  # the ticket pop on node A's desk

            seat = {"agent": agent, "state": "talking", "node": f"127.0.0.1:{b.state.ami_port}"}
            for bed in cluster.nodes:  # the wallboard of either engine: the seat talks on node B
                await board_until(bed_site(bed.state), lambda board: seat in board["seats"])
            # B is chosen because its member is in the call, not by the order of the nodes' names
            # (the shared device state may have the seat "talking" on A too)
            composed = json.loads(str(await tickets.redis.hget(keyspace.SEATS, agent)))
            assert any(q["in_call"] for q in composed["queues"].values()), composed

            transferred = amis[1].wait_for("BlindTransfer", lambda e: e.get("TransfereeLinkedid") == linkedid)
            tax_answered = amis[1].wait_for("DialEnd", lambda e: e.get("Linkedid") == linkedid and e.get(
                "DialStatus") == "ANSWER" and e.get("DestChannel", "").startswith("PJSIP/tax-"))
            async with http.post(site.url + f"/desk/{agent}/transfer", data={"target": "12366"},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                body = await reply.json()
            assert reply.status == 200 and body["ok"], body
            assert body["linkedid"] == linkedid and body["number"] == ticket.number
            await asyncio.wait_for(transferred, 20)  # the move happened on node B's Asterisk
            await asyncio.wait_for(tax_answered, 30)  # B dialed its tax gateway, which answered
        await hang_up_all(amis[1])  # the citizen hangs up: the ticket closes

        async def answered() -> Any:
            t = await tickets.get(linkedid)
            return t if t and any(x.kind == "subcenter" and x.number == "12366" and x.result == "ANSWER"
                                  for x in t.transfers) else None
        done = await until(answered, 60)
        assert [(x.kind, x.number) for x in done.transfers][:2] == [("blind", "12366"), ("subcenter", "12366")]
    finally:
        await tax.stop()
        await hang_up_all(amis[1])


async def test_the_wallboard_of_either_engine_shows_the_callers_waiting_on_both_nodes(
    cluster: ClusterBed, carrier: Any, amis: list[AmiClient],
) -> None:
    assert cluster.state
    for ami in amis:  # no seat logged in (the bed starts so; the desk test logs its seats out): callers wait
        assert not await members(ami)
    try:
        # one carrier sipp (it has one address), a call every 10 s: the first forced to A, the second to B
        callers = [carrier.next_caller(), carrier.next_caller()]
        on_a = amis[0].wait_for("Newstate", calling(callers[0]))
        joined = [ami.wait_for("QueueCallerJoin", calling(c)) for ami, c in zip(amis, callers)]
        async with only_node(cluster, 0):
            await carrier.calls(2, hold_ms=90_000, rate=0.1, callers=callers)
            await asyncio.wait_for(on_a, 15)
        async with only_node(cluster, 1):
            await asyncio.wait_for(asyncio.gather(*joined), 60)
        expected = {f"127.0.0.1:{bed.state.ami_port}": 1 for bed in cluster.nodes if bed.state}
        for bed in cluster.nodes:
            board = await board_until(bed_site(bed.state), lambda board: board["platform"]["waiting_by_node"] == expected)
            assert board["platform"]["waiting"] == 2
    finally:
        for ami in amis:
            await hang_up_all(ami)
