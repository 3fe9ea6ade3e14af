"""The real Kamailio running the generated proxy config on loopback (issue 20): it answers OPTIONS,
refuses an INVITE from outside the carrier's addresses, and moves an INVITE a node refuses with a
5xx to the next node, Record-Route kept. The two nodes are UDP sockets of this test, so it needs no
Asterisk; the carrier sends from 127.0.0.9, anyone else from 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE
from ivr.asterisk_conf.kamctl import ctl_socket
from ivr.cluster_apply import running_list, wanted_list
from ivr.cluster_status import dispatcher_view, node_uris
from ivr.config import Settings, load_config
from ivr.kamrpc import call
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
CARRIER = "127.0.0.9"
WAIT_S = 20.0  # upper bound on any one wait; each returns as soon as its message arrives


def udp(address: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    return s


def free_port() -> int:
    with udp() as s:
        return int(s.getsockname()[1])


class Edge:
    """A running proxy, its two node sockets and its address."""

    def __init__(self, port: int, nodes: list[socket.socket], proc: subprocess.Popen[bytes], log: Path):
        self.port, self.nodes, self.proc, self.log = port, nodes, proc, log
        self.settings: Settings | None = None  # what it was rendered from
        self.ctl = ""  # its control socket

    def request(self, sock: socket.socket, method: str, call_id: str, to: str = "12345") -> str:
        host, port = sock.getsockname()
        sock.sendto((
            f"{method} sip:{to}@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:13900000001@{host}>;tag=citizen\r\nTo: <sip:12345@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:13900000001@{host}:{port}>\r\n"
            "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", self.port))
        return call_id


def receive(socks: list[socket.socket], want: str, timeout: float = WAIT_S) -> tuple[socket.socket, str]:
    """The first message starting with ``want`` on any of ``socks``; a node socket answers the
    dispatcher's OPTIONS probes meanwhile (so it stays up)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            data, peer = s.recvfrom(65535)
            text = data.decode()
            if text.startswith(want):
                return s, text
            if text.startswith("OPTIONS "):
                s.sendto(reply(text, "200 OK").encode(), peer)
    raise AssertionError(f"no {want!r} within {timeout} s")


def reply(request: str, status: str, contact: str = "") -> str:
    """A node's answer; with ``contact`` (a 2xx) it keeps the Record-Route, as a UAS must."""
    keep = ("via", "from", "call-id", "cseq", "to") + (("record-route",) if contact else ())
    head = [line for line in request.split("\r\n\r\n")[0].split("\r\n")[1:] if line.split(":")[0].lower() in keep]
    head += [f"Contact: <{contact}>"] if contact else []
    head = [f"{line};tag=node" if line.lower().startswith("to:") else line for line in head]
    return f"SIP/2.0 {status}\r\n" + "\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n"


def header(message: str, name: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in message.split("\r\n") if line.lower().startswith(name.lower() + ":")]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    yield from run_edge(tmp_path)


def run_edge(tmp_path: Path, carrier: tuple[str, ...] = ()) -> Iterator[Edge]:
    """Proxy edge-a of a two-proxy, two-node topology; ``carrier``: its ``cluster.carrier``."""
    kamailio = shutil.which("kamailio")
    assert kamailio, "kamailio is not installed: ./run installs it (Debian package kamailio)"
    nodes = [udp(), udp()]
    port = free_port()
    cfg = tmp_path / "config"
    shutil.copytree(REPO / "config", cfg)
    engine = (cfg / "engine.yaml").read_text()
    (cfg / "engine.yaml").write_text(engine.replace("pstn_match: [127.0.0.1]", f"pstn_match: [{CARRIER}]"))
    node_lines = "".join(
        f'    ast-{i}: {{sip: "127.0.0.1:{s.getsockname()[1]}", ami: "127.0.0.1:{free_port()}", '
        f"rtp_start: {20000 + 1000 * i}, rtp_end: {20999 + 1000 * i}}}\n" for i, s in enumerate(nodes))
    quoted = ", ".join(f'"{g}"' for g in carrier)
    gateways = f"  carrier: [{quoted}]\n" if carrier else ""
    (cfg / "cluster.yaml").write_text(f'cluster:\n{gateways}  proxies:\n    edge-a: {{sip: "127.0.0.1:{port}"}}\n'
                                      f'    edge-b: {{sip: "127.0.0.1:{free_port()}"}}\n  nodes:\n{node_lines}')
    settings = load_config(cfg, environ={}).settings
    out = tmp_path / "edge"
    out.mkdir()
    files = render(settings, RenderOptions(ami_secret=fresh_secret(), node="ast-0", kamailio_dir=str(out),
                                           kamailio_run_dir=str(out),  # its control socket: not the host's
                                           agent_secrets={name: fresh_secret() for name in settings.agents}))
    for name in ("kamailio-edge-a.cfg", "dispatcher.list", SECRETS_FILE):
        (out / name).write_text(files[name])
    log_path = tmp_path / "kamailio.log"
    log = log_path.open("w")
    # unprivileged: as root (this test bed) it drops to nobody once it has read its files and bound its port
    user = ["-u", "nobody", "-g", "nogroup"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([kamailio, "-DD", "-E", *user, "-f", str(out / "kamailio-edge-a.cfg"), "-Y", str(out),
                             "-w", str(out)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        edge = Edge(port, nodes, proc, log_path)
        edge.settings, edge.ctl = settings, ctl_socket(str(out), "edge-a")
        yield edge
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for s in nodes:
            s.close()


def ready(edge: Edge, sock: socket.socket) -> str:
    """Kamailio's first answer to OPTIONS: asked again until it listens (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and edge.proc.poll() is None:
        edge.request(sock, "OPTIONS", f"ready-{uuid.uuid4().hex}")
        if select.select([sock], [], [], 0.5)[0]:
            return sock.recv(65535).decode()
    raise AssertionError("kamailio did not answer OPTIONS: " + edge.log.read_text()[-3000:])


def test_the_proxy_answers_options_and_refuses_invites_from_outside_the_carrier(edge: Edge) -> None:
    with udp("127.0.0.1") as stranger:
        assert ready(edge, stranger).startswith("SIP/2.0 200 ")
        assert os.stat(f"/proc/{edge.proc.pid}").st_uid != 0  # it answers without root
        edge.request(stranger, "INVITE", "stranger-call")
        _, answer = receive([stranger], "SIP/2.0 4")
        assert answer.startswith("SIP/2.0 403 ") and header(answer, "Call-ID") == ["stranger-call"]


def first_node(edge: Edge, carrier: socket.socket, call_id: str) -> tuple[socket.socket, str]:
    """The carrier's INVITE, once the proxy answers OPTIONS, as the first node receives it."""
    assert ready(edge, carrier).startswith("SIP/2.0 200 ")
    edge.request(carrier, "INVITE", call_id)
    return receive(edge.nodes, "INVITE ")


def next_node(edge: Edge, first: socket.socket, call_id: str) -> tuple[socket.socket, str]:
    """The same INVITE at the other node."""
    second, again = receive([s for s in edge.nodes if s is not first], "INVITE ")
    assert header(again, "Call-ID") == [call_id] and header(again, "CSeq") == ["1 INVITE"]
    return second, again


def test_an_invite_a_node_refuses_moves_to_the_next_node_within_the_same_transaction(edge: Edge) -> None:
    with udp(CARRIER) as carrier:
        first, invite = first_node(edge, carrier, "citizen-call")
        assert header(invite, "Call-ID") == ["citizen-call"]
        assert header(invite, "Record-Route") == [f"<sip:127.0.0.1:{edge.port};lr;ftag=citizen>"]  # BYE passes here
        first.sendto(reply(invite, "503 Service Unavailable").encode(), ("127.0.0.1", edge.port))
        second, again = next_node(edge, first, "citizen-call")
        second.sendto(reply(again, "503 Service Unavailable").encode(), ("127.0.0.1", edge.port))
        _, final = receive([carrier], "SIP/2.0 5")
        # both nodes refused: the carrier gets the failure, as 500 (a proxy never forwards a 503,
        # RFC 3261 16.7: it would mean the proxy itself is unavailable)
        assert final.startswith("SIP/2.0 500 ") and header(final, "Call-ID") == ["citizen-call"]


def test_a_node_that_does_not_answer_is_skipped_after_the_invite_timeout_but_a_4xx_is_final(edge: Edge) -> None:
    with udp(CARRIER) as carrier:
        silent, _ = first_node(edge, carrier, "silent-node-call")  # never answered: no 100 Trying within fr_timer
        other, again = next_node(edge, silent, "silent-node-call")
        other.sendto(reply(again, "486 Busy Here").encode(), ("127.0.0.1", edge.port))
        _, final = receive([carrier], "SIP/2.0 4")
        assert final.startswith("SIP/2.0 486 ")  # a node's 4xx is the call's answer, not a node failure


def test_call_load_sends_each_call_to_the_node_holding_fewer_and_a_bye_through_the_proxy_frees_it(edge: Edge) -> None:
    """Algorithm 10: call 2 goes to the node without a call; once call 2's BYE (which passes the
    proxy thanks to Record-Route) took that load away, call 3 goes there again, where a rotation
    or a hash would be as likely to pick the node still holding call 1."""
    with udp(CARRIER) as carrier:
        busy, invite = first_node(edge, carrier, "call-1")
        answer(edge, carrier, busy, invite)
        edge.request(carrier, "INVITE", "call-2")
        other, second = receive(edge.nodes, "INVITE ")
        assert other is not busy and header(second, "Call-ID") == ["call-2"]  # the node with no call
        node_uri = answer(edge, carrier, other, second)
        host, port = carrier.getsockname()
        carrier.sendto((  # the citizen hangs up call 2: in the dialog, routed by the Record-Route
            f"BYE {node_uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
            f"Route: <sip:127.0.0.1:{edge.port};lr;ftag=citizen>\r\nMax-Forwards: 70\r\n"
            f"From: <sip:13900000001@{host}>;tag=citizen\r\nTo: <sip:12345@127.0.0.1>;tag=node\r\n"
            "Call-ID: call-2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", edge.port))
        _, bye = receive([other], "BYE ")
        other.sendto(reply(bye, "200 OK").encode(), ("127.0.0.1", edge.port))
        receive([carrier], "SIP/2.0 200")
        edge.request(carrier, "INVITE", "call-3")
        freed, third = receive(edge.nodes, "INVITE ")
        assert freed is other and header(third, "Call-ID") == ["call-3"]  # its load came down with the BYE


def answer(edge: Edge, carrier: socket.socket, node: socket.socket, invite: str) -> str:
    """The node answers the INVITE (200 with its Contact); the carrier sees the 200 with the
    proxy's Record-Route. Returns the node's Contact URI."""
    node_uri = f"sip:12345@127.0.0.1:{node.getsockname()[1]}"
    node.sendto(reply(invite, "200 OK", node_uri).encode(), ("127.0.0.1", edge.port))
    _, answered = receive([carrier], "SIP/2.0 2")
    assert header(answered, "Record-Route") == [f"<sip:127.0.0.1:{edge.port};lr;ftag=citizen>"]
    return node_uri


def test_a_call_every_node_refused_is_not_left_counted_on_a_node(edge: Edge) -> None:
    """Algorithm 10 after calls refused by both nodes (cluster full): they hold nothing, so the next
    call after a held one still goes to the node without a call. Before the fix each refused call
    stayed counted on the last node it tried (``ds_load_unset`` found no node once ``ds_next_dst``
    had dropped it), and the proxy then sent calls to the other node, full or not."""
    with udp(CARRIER) as carrier:
        last = None
        for n in range(2):
            first, invite = first_node(edge, carrier, f"refused-{n}")
            assert header(invite, "Call-ID") == [f"refused-{n}"]
            first.sendto(reply(invite, "503 Service Unavailable").encode(), ("127.0.0.1", edge.port))
            last, again = next_node(edge, first, f"refused-{n}")
            last.sendto(reply(again, "503 Service Unavailable").encode(), ("127.0.0.1", edge.port))
            _, final = receive([carrier], "SIP/2.0 500")
            assert header(final, "Call-ID") == [f"refused-{n}"]
        busy, invite = first_node(edge, carrier, "held")
        assert header(invite, "Call-ID") == ["held"]
        answer(edge, carrier, busy, invite)
        edge.request(carrier, "INVITE", "after")
        other, after = receive(edge.nodes, "INVITE ")
        assert header(after, "Call-ID") == ["after"]
        assert other is not busy  # the node without a call, though it refused both calls last


# Calls out (callbacks) through the proxies (docs/cluster.md "Calls out"): the carrier's gateways are
# two sockets on the carrier's address; a node's INVITE goes to the primary, the secondary when the
# primary is silent, and nobody but a node gets one out.


@pytest.fixture
def gateways() -> Iterator[list[socket.socket]]:
    socks = [udp(CARRIER), udp(CARRIER)]  # primary, secondary
    yield socks
    for s in socks:
        s.close()


@pytest.fixture
def edge_out(tmp_path: Path, gateways: list[socket.socket]) -> Iterator[Edge]:
    yield from run_edge(tmp_path, tuple(f"{CARRIER}:{g.getsockname()[1]}" for g in gateways))


CITIZEN = "13900000002"


def test_a_nodes_call_out_reaches_the_carriers_primary_through_the_proxy_and_its_bye_comes_back(
    edge_out: Edge, gateways: list[socket.socket],
) -> None:
    node, (primary, secondary) = edge_out.nodes[0], gateways
    assert ready(edge_out, node).startswith("SIP/2.0 200 ")
    edge_out.request(node, "INVITE", "callback-1", to=CITIZEN)
    got, invite = receive([primary, secondary], "INVITE ")
    assert got is primary
    assert invite.startswith(f"INVITE sip:{CITIZEN}@{CARRIER}:{primary.getsockname()[1]} SIP/2.0")  # the gateway's
    route = f"<sip:127.0.0.1:{edge_out.port};lr;ftag=citizen;out=1>"  # marked: a call out
    assert header(invite, "Record-Route") == [route]  # the citizen's BYE passes the proxy
    gateway_uri = f"sip:{CITIZEN}@{CARRIER}:{primary.getsockname()[1]}"
    primary.sendto(reply(invite, "200 OK", gateway_uri).encode(), ("127.0.0.1", edge_out.port))
    _, answered = receive([node], "SIP/2.0 2")
    assert header(answered, "Record-Route") == [route] and header(answered, "Call-ID") == ["callback-1"]
    host, port = node.getsockname()
    primary.sendto((  # the citizen hangs up: from the carrier, routed by the Record-Route to the node
        f"BYE sip:13900000001@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {CARRIER}:{primary.getsockname()[1]};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
        f"Route: {route}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:{CITIZEN}@{CARRIER}>;tag=node\r\nTo: <sip:13900000001@{host}>;tag=citizen\r\n"
        "Call-ID: callback-1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", edge_out.port))
    _, bye = receive([node], "BYE ")
    assert header(bye, "Call-ID") == ["callback-1"]
    assert "cannot find load" not in edge_out.log.read_text()  # no node's call load was touched by it


def test_a_silent_primary_gateway_is_left_for_the_secondary_within_the_same_call(
    edge_out: Edge, gateways: list[socket.socket],
) -> None:
    node, secondary = edge_out.nodes[1], gateways[1]  # the primary never answers, not even the probes
    assert ready(edge_out, node).startswith("SIP/2.0 200 ")
    edge_out.request(node, "INVITE", "callback-2", to=CITIZEN)
    _, invite = receive([secondary], "INVITE ")
    assert invite.startswith(f"INVITE sip:{CITIZEN}@{CARRIER}:{secondary.getsockname()[1]} SIP/2.0")
    assert header(invite, "Call-ID") == ["callback-2"] and header(invite, "CSeq") == ["1 INVITE"]
    secondary.sendto(reply(invite, "486 Busy Here").encode(), ("127.0.0.1", edge_out.port))
    _, final = receive([node], "SIP/2.0 4")
    assert final.startswith("SIP/2.0 486 ")  # the citizen's answer, not a gateway failure


def test_nobody_but_a_node_calls_out_through_the_proxy(edge_out: Edge, gateways: list[socket.socket]) -> None:
    """Toll fraud: a stranger's INVITE to a citizen's number is refused, not sent to the carrier; a
    node's INVITE to a user that is no number too."""
    with udp("127.0.0.1") as stranger:
        assert ready(edge_out, stranger).startswith("SIP/2.0 200 ")
        edge_out.request(stranger, "INVITE", "fraud-1", to=CITIZEN)
        _, refused = receive([stranger], "SIP/2.0 4")
        assert refused.startswith("SIP/2.0 403 ") and header(refused, "Call-ID") == ["fraud-1"]
    edge_out.request(edge_out.nodes[0], "INVITE", "odd-1", to="gw;lr")
    _, refused = receive([edge_out.nodes[0]], "SIP/2.0 4")
    assert refused.startswith("SIP/2.0 403 ") and header(refused, "Call-ID") == ["odd-1"]
    assert set(pending(gateways)) <= {"OPTIONS"}  # at most the dispatcher's probes reached the carrier


def pending(socks: list[socket.socket]) -> list[str]:
    """The methods of what is already waiting on ``socks`` (no wait)."""
    out = []
    while ready := select.select(socks, [], [], 0)[0]:
        out += [s.recv(65535).decode().split(" ", 1)[0] for s in ready]
    return out


def test_without_cluster_carrier_a_nodes_call_out_is_refused_as_before(edge: Edge) -> None:
    node = edge.nodes[0]
    assert ready(edge, node).startswith("SIP/2.0 200 ")
    edge.request(node, "INVITE", "callback-off", to=CITIZEN)
    _, refused = receive([node], "SIP/2.0 4")
    assert refused.startswith("SIP/2.0 403 ")


def test_a_proxy_with_gateways_runs_the_topology_and_its_view_names_only_the_nodes(edge_out: Edge) -> None:
    """``ivr reload --asterisk`` compares what each proxy runs with the topology: with the gateways
    in set 2 it must still find them equal (``unchanged``), and a changed gateway must differ;
    ``ivr cluster status`` shows the nodes, not the gateways as odd nodes."""
    with udp("127.0.0.1") as probe:
        assert ready(edge_out, probe).startswith("SIP/2.0 200 ")
    s = edge_out.settings
    assert s and s.cluster
    reply = asyncio.run(call(edge_out.ctl, "dispatcher.list"))
    assert running_list(reply) == wanted_list(s)
    assert sorted(dispatcher_view(reply, node_uris(s))) == ["ast-0", "ast-1"]
    swapped = s.model_copy(update={"cluster": s.cluster.model_copy(update={"carrier": s.cluster.carrier[::-1]})})
    assert running_list(reply) != wanted_list(swapped)  # the secondary made primary: the proxies must reload
