"""Calls on a cluster bed: the carrier sends citizens to the proxies (primary, then secondary:
testbed/sipp/carrier.py), a stranger tries, and each call's ticket tells which node took it
(``linkedid`` starts with the node's ``systemname``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from ivr.ami.client import AmiClient
from testbed.calls import hang_up_all, until
from testbed.cluster import ClusterBed
from testbed.ports import PortAllocator
from testbed.sipp import Sipp
from tickets.store import TicketStore
from testbed.sipp.carrier import carrier_calls, stranger_call

_ports = PortAllocator()
_caller_ids = itertools.count(13600000001)
_batches = itertools.count()


class Carrier:
    """The carrier's gateway in front of a cluster bed: every call from its one address
    (``carrier_port``, the proxies' ``sip.pstn_match``), to proxy ``primary`` first and to the
    other proxy when the primary does not answer within the carrier's timer."""

    def __init__(self, cluster: ClusterBed, workdir: Path):
        assert cluster.state
        self.cluster, self.state, self.workdir = cluster, cluster.state, workdir
        self.peers: list[Sipp] = []

    @staticmethod
    def next_caller() -> str:
        return str(next(_caller_ids))

    async def calls(self, count: int, *, hold_ms: int = 6000, rate: float = 10, dialed: str = "12345",
                    primary: int = 0, callers: list[str] | None = None,
                    dialed_each: list[str] | None = None, outcomes: bool = False,
                    announce_media: int | None = None) -> tuple[Sipp, list[str]]:
        """``count`` citizens (or ``callers``) calling ``dialed`` (or each its ``dialed_each``) at
        ``rate`` per second, each holding ``hold_ms`` (overlapping when ``count / rate`` is
        shorter); returns the sipp and the callers. ``announce_media``: the calls' SDP names that
        RTP port (a testbed.rtp.ToneLeg's), not sipp's own."""
        callers = callers or [self.next_caller() for _ in range(count)]
        ports = self.state.proxy_ports
        sipp = await carrier_calls(self.workdir, primary_port=ports[primary], secondary_port=ports[1 - primary],
                                   local_port=self.state.carrier_port, media_port=_ports.block(4), dialed=dialed,
                                   callers=callers, rate=rate, hold_ms=hold_ms, name=f"carrier-{next(_batches)}",
                                   dialed_each=dialed_each, outcomes=outcomes, announce_media=announce_media)
        self.peers.append(sipp)
        return sipp, callers

    async def stranger(self, proxy: int = 0, dialed: str = "12345") -> Sipp:
        """An INVITE to proxy ``proxy`` from another port of the carrier's host: not the carrier."""
        sipp = await stranger_call(self.workdir, proxy_port=self.state.proxy_ports[proxy], local_port=_ports.one(),
                                   dialed=dialed, name=f"stranger-{next(_batches)}")
        self.peers.append(sipp)
        return sipp

    async def close(self) -> None:
        for p in self.peers:
            await p.stop()

    async def __aenter__(self) -> "Carrier":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def node_of(cluster: ClusterBed, linkedid: str) -> str:
    """The node whose Asterisk made ``linkedid`` (its ``systemname`` prefixes every uniqueid)."""
    assert cluster.state
    found = [n for n in cluster.state.node_names if linkedid.startswith(f"{n}-")]
    assert len(found) == 1, f"linkedid {linkedid!r} names no single node of {cluster.state.node_names}"
    return found[0]


def cluster_tickets(cluster: ClusterBed, workdir: Path) -> TicketStore:
    """Every node's tickets: one Redis (through Sentinel when the bed has it) for all engines."""
    node = cluster.nodes[0]
    assert node.state
    return TicketStore(node.settings.redis, workdir / "reader", name="test", retention_days=1,
                       caller_key=node.state.caller_key.encode())


def node_ami(cluster: ClusterBed, index: int) -> AmiClient:
    """A read-all AMI client (the bed's ``testbed`` user) on node ``index`` (connect it in the loop)."""
    st = cluster.nodes[index].state
    assert st
    return AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret)


@contextlib.asynccontextmanager
async def node_amis(cluster: ClusterBed) -> AsyncIterator[list[AmiClient]]:
    """A read-all AMI session on each node; calls left up are hung up after the block."""
    clients = [node_ami(cluster, i) for i in range(len(cluster.nodes))]
    for c in clients:
        await c.connect()
    try:
        yield clients
    finally:
        for c in clients:
            if c.connected:  # a node killed meanwhile took its calls with it
                await hang_up_all(c)
            c.close()


async def current_calls(ami: AmiClient) -> int:
    """The calls the node counts against ``maxcalls`` now: ``core show calls`` (CoreStatus'
    ``CoreCurrentCalls`` counts channels, two per Local call)."""
    reply: Any = await ami.action({"Action": "Command", "Command": "core show calls"}, as_list=False)
    output = reply.get("Output")
    lines = output if isinstance(output, list) else str(output or reply.content).splitlines()
    found = [int(m.group(1)) for line in lines if (m := re.match(r"\s*(\d+) (?:of \d+ max )?active calls?", line))]
    assert len(found) == 1, f"no call count in {lines!r}"
    return found[0]


async def fill_node(ami: AmiClient, maxcalls: int, limit: int = 200) -> int:
    """Hold calls on a node (Local channels whose far leg waits in ``[ivr-test-caller]``, no SIP,
    so the proxies do not count them) until it is at ``maxcalls``; returns its count. Each far leg
    is one call; its near leg rings unanswered (not counted). In rounds: as many originations as
    the node lacks, then until they are counted (one at a time, each counted before the next, took
    up to a second per call on busy cores); a call that did not start is made up by the next
    round. Bounded by ``limit`` originations."""
    sent = 0
    while (calls := await current_calls(ami)) < maxcalls:
        if sent >= limit:
            raise AssertionError(f"the node did not reach {maxcalls} calls after {limit} originations")
        lacking = min(maxcalls - calls, limit - sent)
        for _ in range(lacking):
            await ami.action({"Action": "Originate", "Channel": "Local/s@ivr-test-caller", "Context": "ivr-test-caller",
                              "Exten": "s", "Priority": "1", "CallerID": "filler <10000>", "Async": "true",
                              "Timeout": "600000"}, as_list=False)
        sent += lacking
        with contextlib.suppress(AssertionError):  # fewer counted: the next round makes them up
            await until(_at_least(ami, calls + lacking), timeout=10)
    return calls


def _at_least(ami: AmiClient, calls: int) -> Callable[[], Awaitable[bool]]:
    async def counted() -> bool:
        return await current_calls(ami) >= calls
    return counted


async def wait_all(sipps: list[Sipp], timeout: float) -> list[int]:
    return list(await asyncio.gather(*(s.wait(timeout) for s in sipps)))
