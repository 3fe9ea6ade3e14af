"""The node-gone duty's PUBLISH (ivr/sip_publish.py) and where the nodes accept it from
(ivr/asterisk_conf/node_seats.py): the request sent from the sender's own address with the body
res_pjsip_publish_asterisk reads, every value checked (no header or body can be injected, no host
name resolved), and the nodes accept it from the engines' FastAGI address:port only. The real
Asterisk taking it is tested on the cluster bed (tests/integration/test_cluster_agents.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from pathlib import Path
from typing import Callable

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import load_config
from ivr.core.secret_policy import fresh_secret
from ivr.sip_publish import publish_request, publish_states
from testbed.ports import PortAllocator

REPO = Path(__file__).resolve().parents[2]
EID = "02:11:22:33:44:55"
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {sip: "127.0.0.1:5070"}
    edge-b: {sip: "127.0.0.1:5071"}
  nodes:
    ast-a: {sip: "127.0.0.1:5080", ami: "127.0.0.1:5038", rtp_start: 10000, rtp_end: 10999, engines: ["127.0.0.1:4573"]}
    ast-b: {sip: "127.0.0.1:5081", ami: "127.0.0.1:5039", rtp_start: 11000, rtp_end: 11999, engines: ["127.0.0.2:4573"]}
"""


def test_the_nodes_accept_the_duty_from_the_engines_addresses_only(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    (d / "cluster.yaml").write_text(TOPOLOGY)
    s = load_config(d, environ={}).settings
    pjsip = render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={a: fresh_secret() for a in s.agents},
                                    node="ast-a", kamailio_dir="/etc/kamailio"))["pjsip_generated.conf"]
    seats = "^PJSIP/(" + "|".join(s.agents) + ")$"
    assert "[duty.node-gone]\ntype=endpoint\ncontext=ivr-no-calls\nidentify_by=ip\ndisallow=all\n" in pjsip
    assert "[duty.node-gone]\ntype=identify\nendpoint=duty.node-gone\nmatch=127.0.0.1:4573\nmatch=127.0.0.2:4573\n" in pjsip
    assert ("[duty.node-gone]\ntype=inbound-publication\nendpoint=duty.node-gone\n"
            "event_asterisk-devicestate=duty.node-gone\n") in pjsip
    assert f"[duty.node-gone]\ntype=asterisk-publication\ndevice_state=yes\ndevice_state_filter={seats}\n" in pjsip


@pytest.mark.parametrize("field, bad", [
    ("device", "PJSIP/agent1001\r\nEvent: message-summary"), ("device", "Local/x@ctx"),
    ("state", "INVALID\r\nX: 1"), ("state", "GONE"), ("eid", "02:11:22:33:44"), ("eid", "02:11:22:33:44:55\r\n"),
    ("resource", "duty\r\nX: 1"), ("target", "localhost:5080"), ("local", "127.0.0.1:5080\r\n"),
])
def test_a_value_that_would_break_the_request_is_refused(field: str, bad: str) -> None:
    args = {"target": "127.0.0.1:5080", "local": "127.0.0.1:4573", "resource": "duty.node-gone",
            "device": "PJSIP/agent1001", "state": "INVALID", "eid": EID, "call_id": "ab12"} | {field: bad}
    with pytest.raises(ValueError):
        publish_request(**args)


def _node() -> socket.socket:
    """A real UDP socket standing for a node (not reading until a test hands it a reader)."""
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node.bind(("127.0.0.1", 0))
    node.setblocking(False)
    return node


def _ok(text: str) -> bytes:
    """The node's 200 to the request ``text`` (its Via, From, To, Call-ID and CSeq)."""
    head = {line.split(":")[0].lower(): line for line in text.split("\r\n\r\n")[0].split("\r\n")[1:]}
    return "\r\n".join(["SIP/2.0 200 OK", head["via"], head["from"], head["to"] + ";tag=n", head["call-id"],
                        head["cseq"], "Content-Length: 0", "", ""]).encode()


async def _publish(node: socket.socket, on_datagram: Callable[[], None], local: int, states: dict[str, str],
                   **timeout: float) -> dict[str, int]:
    """``states`` published from ``local`` to ``node``, whose datagrams ``on_datagram`` reads."""
    loop = asyncio.get_running_loop()
    loop.add_reader(node.fileno(), on_datagram)
    try:
        return await publish_states(f"127.0.0.1:{local}", f"127.0.0.1:{node.getsockname()[1]}", "duty.node-gone",
                                    states, EID, **timeout)
    finally:
        loop.remove_reader(node.fileno())
        node.close()


TWO = {"PJSIP/agent1001": "INVALID", "PJSIP/agent1002": "INVALID"}


async def test_each_state_is_published_from_the_senders_own_address_and_answered() -> None:
    local, node = PortAllocator().one(), _node()
    node_port = node.getsockname()[1]
    seen: list[tuple[str, tuple[str, int]]] = []

    def answer() -> None:
        data, sender = node.recvfrom(65535)
        seen.append((data.decode(), sender))
        if "agent1002" not in data.decode():  # the node answers one of the two
            node.sendto(_ok(data.decode()), sender)

    codes = await _publish(node, answer, local, TWO, timeout=0.5)
    assert codes == {"PJSIP/agent1001": 200, "PJSIP/agent1002": 0}
    assert {sender for _text, sender in seen} == {("127.0.0.1", local)}  # identified by this address
    text = seen[0][0]
    assert text.startswith(f"PUBLISH sip:duty.node-gone@127.0.0.1:{node_port} SIP/2.0\r\n")
    assert "\r\nEvent: asterisk-devicestate\r\n" in text and "\r\nContent-Type: application/json\r\n" in text
    body = json.loads(text.split("\r\n\r\n", 1)[1])
    assert body["type"] == "devicestate" and body["state"] == "INVALID" and body["eid"] == EID


async def test_a_lost_publish_is_retransmitted_unchanged_until_the_node_answers() -> None:
    """The node's network drops the first two datagrams of every request (a real UDP socket that
    reads and ignores them): each PUBLISH is sent again, byte for byte (same branch, so the node's
    transaction layer takes it for the same request), until the third gets through and is
    answered; the sender stops once answered. Sent once, as before, both states would be lost."""
    node = _node()
    got: dict[str, list[bytes]] = {}

    def lossy() -> None:
        data, sender = node.recvfrom(65535)
        copies = got.setdefault(data.decode().split("Call-ID: ")[1].split("\r\n")[0], [])
        copies.append(data)
        if len(copies) == 3:  # the first two were lost on the way
            node.sendto(_ok(data.decode()), sender)

    codes = await _publish(node, lossy, PortAllocator().one(), TWO)
    assert codes == {"PJSIP/agent1001": 200, "PJSIP/agent1002": 200}
    assert len(got) == 2 and all(len(copies) == 3 for copies in got.values())  # none after the answer
    assert all(len(set(copies)) == 1 for copies in got.values())  # the same request each time


async def test_a_node_that_never_answers_gets_retransmissions_until_timer_f() -> None:
    """A silent node (the datagrams arrive, nothing answers): the request is repeated (timer E)
    until the transaction's bound, then reported unanswered (0)."""
    node = _node()
    received: list[bytes] = []
    codes = await _publish(node, lambda: received.append(node.recvfrom(65535)[0]), PortAllocator().one(),
                           {"PJSIP/agent1001": "INVALID"}, timeout=2.0)
    assert codes == {"PJSIP/agent1001": 0}
    assert len(received) >= 3 and len(set(received)) == 1, len(received)  # at 0, T1, 3·T1 (and no answer)


async def test_a_port_nobody_listens_on_ends_the_transaction_at_once() -> None:
    """The kernel's ICMP port unreachable (a node whose Asterisk is gone) is a transport failure:
    reported unanswered without retransmitting for timer F's 32 s (the duty goes on to the next
    node). The port is one the allocator found free, closed again before the send."""
    ports = PortAllocator()
    gone = _node()
    port = gone.getsockname()[1]
    gone.close()
    codes = await asyncio.wait_for(publish_states(f"127.0.0.1:{ports.one()}", f"127.0.0.1:{port}", "duty.node-gone",
                                                  {"PJSIP/agent1001": "INVALID"}, EID), 10)
    assert codes == {"PJSIP/agent1001": 0}
