"""Seat device states told to an Asterisk node the way its peers tell them: a SIP ``PUBLISH``
with ``Event: asterisk-devicestate`` and res_pjsip_publish_asterisk's JSON body (type, device,
state, cachable, entity id). The node-gone duty uses it to clear a dead node's cached seat states on
the surviving nodes (docs/cluster.md, failure table): ``INVALID`` under the dead node's entity id
ranks lowest in Asterisk's aggregate, so each node's own view decides again.

One UDP socket bound to the sender's own address (the nodes accept these from the engines'
FastAGI address:port only: ivr/asterisk_conf/node_seats.py); nothing resolves a name. Every value
that reaches the request is checked here: addresses rebuilt by ``ipaddress``, the resource and the
devices from a closed alphabet, the state from Asterisk's names, the entity id from hex pairs.

UDP loses datagrams, and a lost PUBLISH leaves a seat shown in use on a surviving node for good
(remote state never expires). So each request is a non-INVITE client transaction as RFC 3261
17.1.2 runs it: the same bytes (same branch) again after T1 = 500 ms, doubling up to T2 = 4 s
(timer E; at T2 once a provisional answer came), until a final answer, for at most 64·T1 = 32 s
(timer F). The node's transaction layer answers a retransmission with the same final response.
Not TCP: the nodes know the duty by its address *and port* (``identify_by=ip``, the FastAGI
address:port), which a TCP client cannot send from while the engine listens on it, and the nodes'
PJSIP transports are UDP only; a second transport per node for one rare request is not worth it.
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
T1, T2 = 0.5, 4.0  # s: RFC 3261's round-trip estimate and the longest retransmission interval
TIMER_F = 64 * T1  # s: a non-INVITE transaction gives up after this


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
    """Answers by Call-ID: the final code, and whether a provisional one came (timer E slows to T2)."""

    def __init__(self) -> None:
        self.codes: dict[str, asyncio.Future[int]] = {}
        self.proceeding: set[str] = set()

    def datagram_received(self, data: bytes, addr: object) -> None:
        text = data.decode(errors="replace")
        status = re.match(r"SIP/2\.0 (\d{3})", text)
        call = re.search(r"^(?:Call-ID|i):\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        if not (status and call) or call.group(1) not in self.codes:
            return
        code, future = int(status.group(1)), self.codes[call.group(1)]
        if code < 200:
            self.proceeding.add(call.group(1))
        elif not future.done():
            future.set_result(code)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for the node's port (nothing listens there): a transport failure ends
        every transaction at once (RFC 3261 17.1.4) instead of retransmitting into nothing."""
        for future in self.codes.values():
            if not future.done():
                future.set_result(0)


async def _transaction(transport: asyncio.DatagramTransport, replies: _Replies, call_id: str, request: bytes,
                       timeout: float) -> int:
    """Send ``request`` and retransmit it (timer E) until its final answer or ``timeout`` (timer
    F); returns the code, 0 without one."""
    loop = asyncio.get_running_loop()
    future, give_up, interval = replies.codes[call_id], loop.time() + timeout, T1
    while True:
        transport.sendto(request)
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, min(interval, give_up - loop.time())))
        except TimeoutError:
            if loop.time() >= give_up:
                return 0
            interval = T2 if call_id in replies.proceeding else min(2 * interval, T2)


async def publish_states(local: str, target: str, resource: str, states: dict[str, str], eid: str,
                         timeout: float = TIMER_F) -> dict[str, int]:
    """Each device's state (device → state) published to ``target``, every request retransmitted
    until answered; returns device → the node's final answer (0: none within ``timeout``; 200
    accepted). Sent from ``local`` (``ip:port``)."""
    lip, lport, _ = _host(local)
    loop = asyncio.get_running_loop()
    tip, tport, _ = _host(target)
    # connected to the node: the kernel then reports its ICMP port unreachable (error_received)
    transport, replies = await loop.create_datagram_endpoint(_Replies, local_addr=(lip, lport),
                                                             remote_addr=(tip, tport))
    try:
        sends = {}
        for device, state in states.items():
            call_id = secrets.token_hex(16)
            replies.codes[call_id] = loop.create_future()
            request = publish_request(target, local, resource, device, state, eid, call_id)
            sends[device] = _transaction(transport, replies, call_id, request, timeout)
        codes = await asyncio.gather(*sends.values())
        return dict(zip(sends, codes))
    finally:
        transport.close()
