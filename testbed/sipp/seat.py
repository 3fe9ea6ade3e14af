"""A seat's phone behind the proxies (issue 20): answers each call it is offered and waits for the
BYE, returning the INVITE's ``Record-Route`` in its answers as a real phone does (RFC 3261 12.1.1).
sipp's built-in UAS drops it, so the caller's BYE would bypass the proxy and the seat would stay
locked there (docs/cluster.md, measured)."""

from __future__ import annotations

from pathlib import Path

from testbed.sipp.run import Sipp, agent_phone
from testbed.sipp.scenarios import HEADER, SDP_ANSWER


def _answer(code: str, sdp: bool = False) -> str:
    return f"""<send><![CDATA[
SIP/2.0 {code}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpSeat[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port]>
{"Content-Type: application/sdp" + chr(10) if sdp else ""}Content-Length: {"[len]" if sdp else "0"}
{chr(10) + SDP_ANSWER if sdp else ""}]]></send>"""


def seat_scenario() -> str:
    """Ring, answer, wait for the caller's BYE (every call, any number at once)."""
    steps = ['<recv request="INVITE" crlf="true"/>', _answer("180 Ringing"), _answer("200 OK", sdp=True),
             '<recv request="ACK" crlf="true"/>', '<recv request="BYE"/>', _answer("200 OK")]
    return HEADER + '<scenario name="seat behind a proxy">\n{}\n</scenario>\n'.format("\n".join(steps))


async def seat_phone(workdir: Path, *, port: int, media_port: int, name: str) -> Sipp:
    """The phone on ``port`` until stopped; returns once it listens. Its counters
    (``IncomingCall``: the INVITEs that reached it) in :meth:`Sipp.statistics`."""
    return await agent_phone(workdir, port=port, media_port=media_port, name=name, scenario=seat_scenario())


def ok(request: str, extra: str = "") -> str:
    """A 200 to ``request`` (its Via, From, To, Call-ID and CSeq), with ``extra`` header lines:
    how a test's socket standing for a node, a peer or a proxy answers a probe."""
    keep = [line for line in request.split("\r\n\r\n")[0].split("\r\n")[1:]
            if line.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    return "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + f"\r\n{extra}Content-Length: 0\r\n\r\n"
