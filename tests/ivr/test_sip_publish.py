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


async def test_each_state_is_published_from_the_senders_own_address_and_answered() -> None:
    ports = PortAllocator()
    local = ports.one()
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node.bind(("127.0.0.1", 0))
    node.setblocking(False)
    node_port = node.getsockname()[1]
    seen: list[tuple[str, tuple[str, int]]] = []

    def answer() -> None:
        data, sender = node.recvfrom(65535)
        text = data.decode()
        seen.append((text, sender))
        head = {line.split(":")[0].lower(): line for line in text.split("\r\n\r\n")[0].split("\r\n")[1:]}
        if "agent1002" not in text:  # the node answers one of the two
            reply = "\r\n".join(["SIP/2.0 200 OK", head["via"], head["from"], head["to"] + ";tag=n", head["call-id"],
                                 head["cseq"], "Content-Length: 0", "", ""])
            node.sendto(reply.encode(), sender)

    loop = asyncio.get_running_loop()
    loop.add_reader(node.fileno(), answer)
    try:
        codes = await publish_states(f"127.0.0.1:{local}", f"127.0.0.1:{node_port}", "duty.node-gone",
                                     {"PJSIP/agent1001": "INVALID", "PJSIP/agent1002": "INVALID"}, EID, timeout=0.5)
    finally:
        loop.remove_reader(node.fileno())
        node.close()
    assert codes == {"PJSIP/agent1001": 200, "PJSIP/agent1002": 0}
    assert {sender for _text, sender in seen} == {("127.0.0.1", local)}  # identified by this address
    text = seen[0][0]
    assert text.startswith(f"PUBLISH sip:duty.node-gone@127.0.0.1:{node_port} SIP/2.0\r\n")
    assert "\r\nEvent: asterisk-devicestate\r\n" in text and "\r\nContent-Type: application/json\r\n" in text
    body = json.loads(text.split("\r\n\r\n", 1)[1])
    assert body["type"] == "devicestate" and body["state"] == "INVALID" and body["eid"] == EID
