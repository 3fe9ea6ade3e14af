"""The seats of a cluster bed (issue 20, docs/cluster.md "Agents across nodes"): each seat is one
sipp phone that registers with digest at proxy 1 (proxy 2 when proxy 1 does not answer) and answers
whatever the proxy relays; it registers again before the proxies' 60 s expiry, as phones do. Seats
log in once, through the wish (``ivr agents login``): every node's applier adds them. A node finds
a phone that registered at its next probe (``phones.qualify``): :func:`seat_phones` asks every node
to probe at once, so a test's first call does not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Mapping

from ivr.ami.client import AmiClient
from ivr.asterisk_conf.dispatcher import NODES_SET
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.kamrpc import KamRpcError, call
from ivr.core.route import GENERAL_QUEUE
from queues.model import memberships, serving
from queues.seat_control import SeatControl
from queues.wish_store import SeatWishes
from testbed.calls import run_ivr, until
from testbed.cluster import ClusterBed
from testbed.cluster_calls import node_ami
from testbed.ports import PortAllocator
from testbed.sipp import Sipp
from testbed.sipp.run import register
from testbed.sipp.seat import most_at_once, offers, seat_phone

REFRESH_S = 20.0  # registrations are refreshed this often (the proxies cap expiry at 60 s)
EXPIRES = 60
RETRIES = 3  # a phone's retry count before it fails over to its next registrar (0.5 + 1 + 2 + 4 s)

_ports = PortAllocator()


class SeatPhone:
    """One seat's phone: its sipp (answering), and the registration it keeps at the proxies."""

    def __init__(self, cluster: ClusterBed, workdir: Path, seat: str, phone: Sipp, port: int):
        self.cluster, self.workdir, self.seat, self.phone, self.port = cluster, workdir, seat, phone, port
        self.registered_at: int | None = None  # the proxy's index
        self._refresh: asyncio.Task[None] | None = None

    @property
    def secret(self) -> str:
        st = self.cluster.nodes[0].state
        assert st
        return st.agent_secrets[self.seat]

    async def register(self, expires: int = EXPIRES) -> int:
        """Register at proxy 1, else at proxy 2 (the phone's backup registrar); returns the proxy's
        index. Raises when neither accepts the phone's password."""
        assert self.cluster.state
        failures = []
        for index, proxy_port in enumerate(self.cluster.state.proxy_ports):
            reg = await register(self.workdir, sip_port=proxy_port, local_port=_ports.one(), agent=self.seat,
                                 secret=self.secret, contact_port=self.port, expires=expires, retries=RETRIES)
            code = await reg.wait(40)
            if code == 0:
                self.registered_at = index
                return index
            failures.append(reg.output())
        raise AssertionError(f"{self.seat} could not register at any proxy:\n" + "\n".join(failures))

    def keep_registered(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(REFRESH_S)  # the registration's refresh period, not a wait for a state
                await self.register()
        self._refresh = asyncio.create_task(loop())

    def offers(self) -> list[tuple[str, int, int | None]]:
        return offers(self.phone)

    def most_at_once(self) -> int:
        return most_at_once(self.offers())

    async def _stop_refreshing(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
            self._refresh = None

    async def kill(self) -> None:
        """The phone dies without unregistering (a crash, a lost network): its registration stays
        at the proxies until it expires, and nothing answers at its address."""
        await self._stop_refreshing()
        await self.phone.stop()

    async def close(self) -> None:
        await self._stop_refreshing()
        with contextlib.suppress(Exception):
            await self.register(expires=0)
        await self.phone.stop()


async def new_phone(cluster: ClusterBed, workdir: Path, seat: str, port: int, talk_ms: int | None = None,
                    announce_media: int | None = None) -> SeatPhone:
    """``seat``'s phone listening on ``port``, registered at the proxies and kept registered; the
    nodes find it at their own next probe."""
    sipp = await seat_phone(workdir, port=port, media_port=_ports.block(4), name=f"seat-{seat}-{port}",
                            talk_ms=talk_ms, announce_media=announce_media)
    phone = SeatPhone(cluster, workdir, seat, sipp, port)
    try:
        await phone.register()
    except BaseException:
        await sipp.stop()
        raise
    phone.keep_registered()
    return phone


async def _reachable(ami: AmiClient, seats: Iterable[str]) -> bool:
    listing = await ami.action({"Action": "DeviceStateList"}, as_list=True)
    states = {e.get("Device"): e.get("State") for e in listing}
    return all(states.get(f"PJSIP/{seat}") not in (None, "UNAVAILABLE", "UNKNOWN", "INVALID") for seat in seats)


async def found_by_every_node(cluster: ClusterBed, seats: list[str], timeout: float = 20) -> None:
    """Every node probes the seats' phones now (``PJSIPQualify``) and has found them reachable."""
    for index in range(len(cluster.nodes)):
        ami = node_ami(cluster, index)
        await ami.connect()
        try:
            for seat in seats:
                await ami.action({"Action": "PJSIPQualify", "Endpoint": seat})
            await until(functools.partial(_reachable, ami, seats), timeout)
        finally:
            ami.close()


async def seat_phones(cluster: ClusterBed, workdir: Path, seats: list[str], talk_ms: int | None = None,
                      announce_media: Mapping[str, int] | None = None) -> dict[str, SeatPhone]:
    """A registered phone for each of ``seats`` (answering at once; ``talk_ms``: hangs up after it).
    Each listens on the port the first node's bed reserved for that seat, or supervisor phone
    (whose softphones register at the proxies the same way). ``announce_media``: a phone's SDP
    names that RTP port (a testbed.rtp.ToneLeg's)."""
    st = cluster.nodes[0].state
    assert st
    phones: dict[str, SeatPhone] = {}
    try:
        for seat in seats:
            port = st.agent_ports[seat] if seat in st.agent_ports else st.supervisor_ports[seat]
            phones[seat] = await new_phone(cluster, workdir, seat, port, talk_ms, (announce_media or {}).get(seat))
        await found_by_every_node(cluster, seats)
    except BaseException:
        for p in phones.values():
            await p.close()
        raise
    return phones


async def ivr(cluster: ClusterBed, *args: str, node: int = 0) -> None:
    """``ivr ARGS`` as an operator runs it on node ``node``'s host (a live one: the seat commands
    talk to that node's Asterisk and write the wish every node applies)."""
    state = cluster.nodes[node].state
    assert state
    code, out = await run_ivr(state, *args)
    assert code == 0, out


@contextlib.asynccontextmanager
async def _seat_control(cluster: ClusterBed, node: int) -> AsyncIterator[SeatControl]:
    """What ``ivr agents`` uses on node ``node``'s host (its seat-control AMI user, the wish every
    node applies), in this process: an interpreter per seat cost seconds each on busy cores."""
    bed = cluster.nodes[node]
    client, wishes = bed.seats_ami(), SeatWishes(bed.settings.redis)
    try:
        await client.connect()
        yield SeatControl(client, bed.settings, wishes)
    finally:
        client.close()
        await wishes.close()


async def log_out(cluster: ClusterBed, seats: Iterable[str], node: int = 0) -> None:
    """Each seat logged out as ``ivr agents logout`` does it on node ``node``'s host (the wish every
    node applies, then the node's queues), in this process (a test's cleanup). Tests of the command
    itself run :func:`ivr`."""
    async with _seat_control(cluster, node) as control:
        for seat in seats:
            await control.logout(seat)


def seat_event(seat: str, **fields: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("Interface") == f"PJSIP/{seat}" and all(e.get(k) == v for k, v in fields.items())


def general_seats(cluster: ClusterBed, node: int = 0) -> list[str]:
    """The seats that answer the general queue with a sipp phone: not a leader seat (领导接听), which
    serves only its own, nor a web phone's (``ClusterBed(web_seats=…)``: the desk page is its phone)."""
    settings = cluster.nodes[node].settings
    return [s for s in serving(GENERAL_QUEUE, settings.agents, settings.queues) if settings.agents[s].phone != "web"]


def _home_queue(cluster: ClusterBed, node: int, seat: str) -> str:
    """The queue whose member the seat's login adds for sure: general, or (a seat that does not serve
    general, a leader's) its first one."""
    settings = cluster.nodes[node].settings
    queues = memberships(settings.agents[seat], settings.queues)
    return GENERAL_QUEUE if GENERAL_QUEUE in queues or not queues else next(iter(queues))


async def log_in(cluster: ClusterBed, amis: list[AmiClient], seats: list[str], node: int = 0,
                 command: bool = False) -> None:
    """Each seat logged in once, through the wish (on node ``node``'s host: as ``ivr agents login``
    does it, in this process; ``command``: by that command, an interpreter per seat); returns once
    every node of ``amis`` has added it to the general queue (a seat that does not serve general,
    a leader's: to its own queue)."""
    added = [ami.wait_for("QueueMemberAdded", seat_event(s, Queue=f"q-{_home_queue(cluster, node, s)}"))
             for s in seats for ami in amis]
    if command:
        for seat in seats:
            await ivr(cluster, "agents", "login", seat, node=node)
    else:
        async with _seat_control(cluster, node) as control:
            for seat in seats:
                await control.login(seat)
    await asyncio.wait_for(asyncio.gather(*added), 30)


async def members(ami: AmiClient) -> dict[str, dict[str, dict[str, str]]]:
    """The node's ``QueueStatus``: seat → queue → its member row."""
    listing = await ami.action({"Action": "QueueStatus"}, as_list=True)
    out: dict[str, dict[str, dict[str, str]]] = {}
    for e in listing:
        if e.get("Event") == "QueueMember":
            out.setdefault(e["Location"].removeprefix("PJSIP/"), {})[e["Queue"].removeprefix("q-")] = dict(e)
    return out


async def member_status(ami: AmiClient, seat: str, status: str) -> bool:
    """Whether ``seat``'s general-queue member on that node has device ``status`` (1 free, 2 in use)."""
    return (await members(ami)).get(seat, {}).get("general", {}).get("Status") == status


async def resynced_members(ami: AmiClient, talker: str, free: str, paused: str) -> dict[str, Any]:
    """The node's members once they are as the wish and the other nodes say ({} until then): the
    three seats in the general queue, ``paused`` paused 小休, ``talker`` (talking elsewhere) in
    use, ``free`` free and not paused."""
    rows = await members(ami)
    general = {seat: queues.get("general", {}) for seat, queues in rows.items()}
    t, f, p = (general.get(seat, {}) for seat in (talker, free, paused))
    ok = (t.get("Status") == "2" and f.get("Status") == "1" and f.get("Paused") == "0" and p.get("Paused") == "1"
          and p.get("PausedReason") == "小休")
    return rows if ok else {}

def _proxy_socket(cluster: ClusterBed, proxy: int) -> str:
    assert cluster.state
    return ctl_socket(str(cluster.kamailio_dir), cluster.state.proxy_names[proxy])


def proxy_path(cluster: ClusterBed, proxy: int) -> str:
    """The ``Path`` proxy ``proxy`` writes into the contacts of phones registered through it."""
    assert cluster.state
    return f"<sip:127.0.0.1:{cluster.state.proxy_ports[proxy]};lr>"


async def _contact_fields(cluster: ClusterBed, proxy: int, seat: str, field: str) -> list[str]:
    """``field`` of each contact proxy ``proxy`` holds for ``seat`` (its usrloc, ``ul.lookup`` over
    the control socket; [] when it holds none)."""
    try:
        reply = await call(_proxy_socket(cluster, proxy), "ul.lookup", "location", seat)
    except KamRpcError:  # "AOR not found"
        return []

    def found(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [str(v) for k, v in value.items() if k == field] + \
                [p for k, v in value.items() if k != field for p in found(v)]
        return [p for v in value for p in found(v)] if isinstance(value, list) else []
    return found(reply)


async def contact_paths(cluster: ClusterBed, proxy: int, seat: str) -> list[str]:
    """The ``Path`` of each contact proxy ``proxy`` holds for ``seat``: whom it hands the seat's INVITEs to."""
    return await _contact_fields(cluster, proxy, seat, "Path")


async def contact_received(cluster: ClusterBed, proxy: int, seat: str) -> list[str]:
    """The ``received`` of each contact proxy ``proxy`` holds for ``seat``: a web phone's
    WebSocket connection (``sip:<ip>:<port>;transport=ws``), where its calls go."""
    return await _contact_fields(cluster, proxy, seat, "Received")


async def keepalive_answered(cluster: ClusterBed, proxy: int, seat: str) -> bool:
    """Whether the phone of ``seat`` registered at proxy ``proxy`` has answered its keepalive (the
    contact's ``KA-Roundtrip``, set by an answer only)."""
    return any(int(rtt) > 0 for rtt in await _contact_fields(cluster, proxy, seat, "KA-Roundtrip"))


async def _nodes_at(cluster: ClusterBed, proxy: int) -> list[dict[str, Any]]:
    [reply] = await call(_proxy_socket(cluster, proxy), "dispatcher.list")
    dests = reply["RECORDS"]["SET"]["TARGETS"]["DEST"]
    return dests if isinstance(dests, list) else [dests]


async def dispatches_to(cluster: ClusterBed, proxy: int, node: int) -> bool:
    """Whether proxy ``proxy``'s dispatcher has node ``node`` active (flag A: probed alive, not disabled)."""
    assert cluster.state
    return any(d["ATTRS"]["DUID"] == cluster.state.node_names[node] and str(d["FLAGS"]).startswith("A")
               for d in await _nodes_at(cluster, proxy))


async def set_dispatch(cluster: ClusterBed, node: int, state: str) -> None:
    """Node ``node`` disabled (``d``) or active again (``a``) in every proxy's dispatcher, as an
    operator takes a node out of the rotation: new citizens then go to the other nodes."""
    assert cluster.state
    for proxy in range(len(cluster.state.proxy_names)):
        [uri] = [d["URI"] for d in await _nodes_at(cluster, proxy) if d["ATTRS"]["DUID"] == cluster.state.node_names[node]]
        await call(_proxy_socket(cluster, proxy), "dispatcher.set_state", state, NODES_SET, uri)
