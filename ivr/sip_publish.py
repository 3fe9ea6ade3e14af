"""Seat device states told to an Asterisk node the way its peers tell them: a SIP ``PUBLISH``
with ``Event: asterisk-devicestate`` and res_pjsip_publish_asterisk's JSON body (type, device,
state, cachable, entity id). The node-gone duty uses it to clear a dead node's cached seat states on
the surviving nodes (docs/cluster.md, failure table): ``INVALID`` under the dead node's entity id
ranks lowest in Asterisk's aggregate, so each node's own view decides again.

One UDP socket bound to the sender's own address (the nodes accept these from the engines'
FastAGI address:port only: ivr/asterisk_conf/node_seats.py); nothing resolves a name. Every value
that reaches the request is checked here: addresses rebuilt by ``ipaddress``, the resource and the
devices from a closed alphabet, the state from Asterisk's names, the entity id from hex pairs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import secrets

from ivr.core.conftext import split_ip_port

EVENT = "asterisk-devicestate"
STATES = frozenset({"UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE",
                    "ONHOLD"})
_DEVICE = re.compile(r"PJSIP/[a-z][a-z0-9_-]{0,63}")
_RESOURCE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_EID = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
EXPIRES = 60  # s: the node keeps the publication that long; the states it set stay (remote state never expires)


def _host(address: str) -> tuple[str, int, str]:
    """(ip, port, as written in a URI) of an ``ip:port``; raises ValueError on anything else."""
    host, port = split_ip_port(address)
    ip = ipaddress.ip_address(host)
    return str(ip), port, f"[{ip}]" if ip.version == 6 else str(ip)


def publish_request(target: str, local: str, resource: str, device: str, state: str, eid: str,
                    call_id: str) -> bytes:
    """One PUBLISH of ``device`` in ``state`` as seen by the node of entity id ``eid``, to the node
    at ``target`` (``ip:port``) for its ``resource`` (the Request-URI user it accepts), from ``local``."""
    if not _DEVICE.fullmatch(device) or state not in STATES or not _EID.fullmatch(eid) \
            or not _RESOURCE.fullmatch(resource) or not re.fullmatch(r"[0-9a-f]{1,64}", call_id):
        raise ValueError(f"refused: device {device!r}, state {state!r}, eid {eid!r}, resource {resource!r}")
    _ip, _port, to = _host(target)
    _lip, lport, me = _host(local)
    body = json.dumps({"type": "devicestate", "device": device, "state": state, "cachable": 1, "eid": eid})
    tag, branch = secrets.token_hex(6), secrets.token_hex(8)
    return (f"PUBLISH sip:{resource}@{to}:{_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {me}:{lport};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:{resource}@{me}:{lport}>;tag={tag}\r\n"
            f"To: <sip:{resource}@{to}:{_port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\n"
            f"Event: {EVENT}\r\nExpires: {EXPIRES}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.codes: dict[str, asyncio.Future[int]] = {}

    def datagram_received(self, data: bytes, addr: object) -> None:
        text = data.decode(errors="replace")
        status = re.match(r"SIP/2\.0 (\d{3})", text)
        call = re.search(r"^(?:Call-ID|i):\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        if status and call and int(status.group(1)) >= 200:
            future = self.codes.get(call.group(1))
            if future is not None and not future.done():
                future.set_result(int(status.group(1)))


async def publish_states(local: str, target: str, resource: str, states: dict[str, str], eid: str,
                         timeout: float = 2.0) -> dict[str, int]:
    """Each device's state (device → state) published to ``target``; returns device → the node's
    final answer (0: none within ``timeout``; 200 accepted). Sent from ``local`` (``ip:port``)."""
    lip, lport, _ = _host(local)
    loop = asyncio.get_running_loop()
    transport, replies = await loop.create_datagram_endpoint(_Replies, local_addr=(lip, lport))
    tip, tport, _ = _host(target)
    try:
        waits = {}
        for device, state in states.items():
            call_id = secrets.token_hex(16)
            replies.codes[call_id] = waits[device] = loop.create_future()
            transport.sendto(publish_request(target, local, resource, device, state, eid, call_id), (tip, tport))
        done = {}
        for device, future in waits.items():
            try:
                done[device] = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                done[device] = 0
        return done
    finally:
        transport.close()
