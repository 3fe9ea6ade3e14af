"""A cluster node's seat configuration in the real Asterisk 22 (issue 20): node ast-a rendered by
``ivr asterisk-conf render --node ast-a`` and started in the test bed's rootfs. Its peer ast-b and
the two proxies are UDP sockets of this test: ast-a publishes its seats' device state to ast-b's
address (the refresh it sends when the module loads), accepts ast-b's PUBLISH from ast-b's
address only, and qualifies each seat's contacts at the proxies. The two-Asterisk mesh on the
cluster bed is the coordinator's check after the merge."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import select
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import RenderOptions
from ivr.asterisk_conf.files import write
from ivr.asterisk_conf.options import Directories
from ivr.config import load_config
from ivr.core.secret_policy import fresh_secret
from testbed.ports import PortAllocator
from testbed.processes import log_tail, spawn, stop_group
from testbed.runners import RootfsRunner
from testbed.sipp.run import agent_dial
from testbed.sipp.seat import ok

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30.0  # bound on each wait (Asterisk's start included); each returns when its message arrives
PEER_EID = "02:00:00:00:00:99"
_ports = PortAllocator()


@dataclass
class Seats:
    sip_port: int  # ast-a's
    seat_sip: int  # edge-a's socket for the seats' own calls
    passwords: dict[str, str]
    workdir: Path


class Node:
    """ast-a running; the sockets standing for ast-b and the proxies, by name."""

    def __init__(self, socks: dict[str, socket.socket], log: Path, seats: Seats, ami: tuple[int, str] = (0, "")):
        self.socks, self.log, self.seats = socks, log, seats
        self.ami_port, self.ami_secret = ami  # the engine's AMI user

    def receive(self, name: str, start: str, timeout: float = WAIT_S) -> str:
        """The first request starting with ``start`` at socket ``name`` (others are answered 200)."""
        sock = self.socks[name]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
            data, peer = sock.recvfrom(65535)
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0"):
                sock.sendto(ok(text, "Expires: 60\r\nSIP-ETag: peer\r\n").encode(), peer)
            if text.startswith(start):
                return text
        raise AssertionError(f"no {start!r} at {name} within {timeout} s:\n{log_tail(self.log, 40)}")

    def publish(self, sock: socket.socket, to: int, state: str) -> str:
        """A PUBLISH of agent1001's state as ast-b sends it; returns Asterisk's answer."""
        host, port = sock.getsockname()
        body = json.dumps({"type": "devicestate", "device": "PJSIP/agent1001", "state": state, "cachable": 1,
                           "eid": PEER_EID})
        call_id, branch = uuid.uuid4().hex, uuid.uuid4().hex
        request = (
            f"PUBLISH sip:node.ast-b@127.0.0.1:{to} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{branch};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:node.ast-b@{host}:{port}>;tag=b\r\nTo: <sip:node.ast-b@127.0.0.1:{to}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 PUBLISH\r\nEvent: asterisk-devicestate\r\nExpires: 60\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
        deadline = time.monotonic() + WAIT_S
        # retransmitted, as over UDP (RFC 3261 timer E): Asterisk ignores requests until fully booted
        while (left := deadline - time.monotonic()) > 0:
            sock.sendto(request, ("127.0.0.1", to))
            if not select.select([sock], [], [], min(left, 0.5))[0]:
                continue
            text = sock.recv(65535).decode(errors="replace")
            if text.startswith("SIP/2.0 ") and f"Call-ID: {call_id}" in text and not text.startswith("SIP/2.0 1"):
                return text
        raise AssertionError(f"no answer to the PUBLISH within {WAIT_S} s:\n{log_tail(self.log, 40)}")


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", _ports.one()))
    return s


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    yield from run_node(tmp_path)


def run_node(tmp_path: Path, carrier: str = "") -> Iterator[Node]:
    """ast-a started; ``carrier``: its cluster's ``carrier`` gateway (calls out through the proxies)."""
    runner = RootfsRunner()
    runner.ensure(lambda m: print(m, flush=True))
    socks = {name: _udp() for name in ("ast-b", "edge-a", "edge-b", "stranger")}
    port = {name: s.getsockname()[1] for name, s in socks.items()}
    sip_a, ami_a, seat_sip = _ports.one(), _ports.one(), _ports.one()
    cfg = tmp_path / "config"
    shutil.copytree(REPO / "config", cfg)
    gateway = f'  carrier: ["{carrier}"]\n' if carrier else ""
    (cfg / "cluster.yaml").write_text(
        f'cluster:\n{gateway}  proxies:\n    edge-a: {{sip: "127.0.0.1:{port["edge-a"]}", seat_sip: "127.0.0.1:{seat_sip}"}}\n'
        f'    edge-b: {{sip: "127.0.0.1:{port["edge-b"]}"}}\n  nodes:\n'
        f'    ast-a: {{sip: "127.0.0.1:{sip_a}", ami: "127.0.0.1:{ami_a}", rtp_start: 30000, rtp_end: 30099}}\n'
        f'    ast-b: {{sip: "127.0.0.1:{port["ast-b"]}", ami: "127.0.0.1:{_ports.one()}", rtp_start: 30100, '
        "rtp_end: 30199}\n")
    settings = load_config(cfg, environ={}).settings
    d = runner.instance_base() / f"node-seats-{secrets.token_hex(4)}"
    for sub in ("etc", "varlib", "db", "run", "spool", "log/cdr-custom"):
        (d / sub).mkdir(parents=True)
    inner = runner.inner_path
    dirs = Directories(etc=inner(d / "etc"), varlib=inner(d / "varlib"), db=inner(d / "db"), run=inner(d / "run"),
                       spool=inner(d / "spool"), log=inner(d / "log"))
    passwords, ami_secret = {name: fresh_secret() for name in settings.agents}, fresh_secret()
    write(settings, RenderOptions(ami_secret=ami_secret, directories=dirs, node="ast-a", kamailio_dir="/tmp",
                                  agent_secrets=passwords), d / "etc")
    log = d / "log" / "console.log"
    proc = spawn(runner.command(["/usr/sbin/asterisk", "-f", "-n", "-C", inner(d / "etc/asterisk.conf")], d), log)
    try:
        yield Node(socks, log, Seats(sip_a, seat_sip, passwords, tmp_path / "sipp"), (ami_a, ami_secret))
    finally:
        stop_group(proc.pid, timeout=5)
        for s in socks.values():
            s.close()
        shutil.rmtree(d, ignore_errors=True)


def test_a_node_publishes_its_seats_to_its_peer_and_takes_the_peers_state_from_its_address_only(node: Node) -> None:
    refresh = node.receive("ast-b", "PUBLISH ")  # at start: "send me your states", to the peer's address
    assert refresh.split(" ", 2)[1].startswith("sip:node.ast-a@127.0.0.1:")  # we name ourselves
    assert "Event: asterisk-devicestate" in refresh and '"type":"refresh"' in refresh.replace(" ", "")
    sip_a = int(refresh.split("Via: SIP/2.0/UDP 127.0.0.1:")[1].split(";")[0])
    answer = node.publish(node.socks["ast-b"], sip_a, "INUSE")
    assert answer.startswith("SIP/2.0 200 "), answer
    # anyone else claiming to be ast-b: the body's entity id would be trusted, so the sender is not
    forged = node.publish(node.socks["stranger"], sip_a, "NOT_INUSE")
    assert not forged.startswith("SIP/2.0 2"), forged


def test_a_seat_is_rung_through_the_proxies_which_the_node_qualifies(node: Node) -> None:
    for proxy in ("edge-a", "edge-b"):
        options = node.receive(proxy, "OPTIONS ")
        port = node.socks[proxy].getsockname()[1]
        assert re.fullmatch(rf"sip:(agent|expert|leader)[0-9]+@127\.0\.0\.1:{port}", options.split(" ", 2)[1]), options


async def test_a_seats_own_call_from_the_proxys_seat_socket_is_the_seats_and_the_node_checks_its_password(
        node: Node) -> None:
    """What the proxy forwards from ``seat_sip`` matches no carrier address here, so the node
    identifies the seat by name and challenges it with the seat's own password: ``*74`` answered."""
    seats = node.seats
    node.receive("ast-b", "PUBLISH ")  # ast-a is up
    phone = await agent_dial(seats.workdir, sip_port=seats.sip_port, local_port=seats.seat_sip,
                             media_port=_ports.block(4), agent="agent1001", secret=seats.passwords["agent1001"],
                             code="*74", hold_ms=20_000)  # Asterisk hangs up after its prompt
    assert await phone.wait(30) == 0, phone.output() + log_tail(node.log, 30)


@pytest.fixture
def node_out(tmp_path: Path) -> Iterator[Node]:
    yield from run_node(tmp_path, carrier="127.0.0.1:5060")


async def test_with_cluster_carrier_a_call_out_goes_to_a_proxy_and_a_silent_one_is_left_for_the_other(
        node_out: Node) -> None:
    """docs/cluster.md "Calls out": the node's ``Dial(PJSIP/<number>@pstn)`` (a callback's) is sent
    to a proxy, never to the carrier's gateway; once that proxy is gone (its qualify unanswered),
    the node's calls out go to the other proxy."""
    node = node_out
    node.receive("ast-b", "PUBLISH ")  # ast-a is up (its AMI listens)
    ami = AmiClient("127.0.0.1", node.ami_port, "ivr", node.ami_secret)
    await ami.connect()
    try:
        first, invite = await call_out(ami, node, ["edge-a", "edge-b"])
        assert invite.split(" ", 2)[1] == f"sip:13900000002@127.0.0.1:{node.socks[first].getsockname()[1]}", invite
        other = "edge-b" if first == "edge-a" else "edge-a"
        node.socks[first].close()  # that proxy is gone: the node's next qualify goes unanswered
        node.socks[first] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # (closed again by the fixture)
        reached, again = await call_out(ami, node, [other])
        assert again.split(" ", 2)[1] == f"sip:13900000002@127.0.0.1:{node.socks[other].getsockname()[1]}", again
    finally:
        ami.close()


async def call_out(ami: AmiClient, node: Node, proxies: list[str]) -> tuple[str, str]:
    """Calls out of the node to a citizen, as a callback dials it, one every 2 s until one arrives at
    one of ``proxies`` (Asterisk still booting, or still sending to a proxy it has not yet found
    gone: its qualify runs every 5 s), bounded by WAIT_S; (the proxy, its INVITE)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        await ami.action({"Action": "Originate", "Channel": "PJSIP/13900000002@pstn", "Application": "Wait",
                          "Data": "1", "Async": "true"}, as_list=False)
        proxy, invite = await asyncio.to_thread(_invite_at, node, proxies, 2.0)
        if proxy:
            return proxy, invite
    raise AssertionError(f"no call out reached {proxies} within {WAIT_S} s:\n{log_tail(node.log, 40)}")


def _invite_at(node: Node, proxies: list[str], timeout: float) -> tuple[str, str]:
    socks = {node.socks[name]: name for name in proxies}
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        for sock in select.select(list(socks), [], [], left)[0]:
            data, peer = sock.recvfrom(65535)
            text = data.decode(errors="replace")
            if text.startswith("INVITE "):
                return socks[sock], text
            if not text.startswith("SIP/2.0"):
                sock.sendto(ok(text, "").encode(), peer)
    return "", ""
