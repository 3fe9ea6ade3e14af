"""A seat's phone behind the proxies (issue 20): answers each call it is offered and waits for the
BYE (or, with ``talk_ms``, hangs up itself after that long, as an agent ending a short call),
returning the INVITE's ``Record-Route`` in its answers as a real phone does (RFC 3261 12.1.1).
sipp's built-in UAS drops it, so the caller's BYE would bypass the proxy and the seat would stay
locked there (docs/cluster.md, measured). Each offer is logged with sipp's clock (``offer`` at the
INVITE, ``free`` when the dialog ended: the agent's BYE sent or the caller's answered), so a
test can tell whether the phone ever held two."""

from __future__ import annotations

import re
from pathlib import Path

from testbed.sipp.run import Sipp, agent_phone, announced
from testbed.sipp.scenarios import HEADER, SDP_ANSWER

OFFER, FREE = "seat offer", "seat free"
_MARK = re.compile(rf"({OFFER}|{FREE}) (\S+) (\d+)")


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


def _hang_up() -> list[str]:
    """The agent's BYE: to the caller's Contact through the recorded route (the proxy's); the call
    is over for the phone once it is sent, answered or not."""
    return ["""<send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$local]
To: [$remote]
[last_Call-ID:]
CSeq: 2 BYE
[routes]
Max-Forwards: 70
Content-Length: 0
]]></send>""",
            # a dead node never answers: the proxy does (408), or nobody
            '<recv response="408" optional="true" next="free"/>',
            '<recv response="200" timeout="10000" ontimeout="free"/>']


def seat_scenario(talk_ms: int | None = None) -> str:
    """Ring, answer, wait for the caller's BYE (every call, any number at once); with ``talk_ms``
    the agent hangs up after that long unless the caller did first. An OPTIONS is answered 200."""
    logged = '<action><log message="{} [call_id] [clock_tick]"/></action>'
    # an OPTIONS (the proxy's keepalive, a node's probe passed on): answered as a call of its own
    steps = ['<recv request="OPTIONS" optional="true" next="probe"/>',
             f'<recv request="INVITE" crlf="true" rrs="true">{logged.format(OFFER)}</recv>',
             _answer("180 Ringing"), _answer("200 OK", sdp=True)]
    if talk_ms is None:
        steps += ['<recv request="ACK" crlf="true"/>', '<recv request="BYE"/>', _answer("200 OK")]
    else:
        steps += ['<recv request="ACK" crlf="true"><action>'
                  '<ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote"/>'
                  '<ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local"/>'
                  '</action></recv>',
                  f'<recv request="BYE" timeout="{talk_ms}" ontimeout="agent_ends"/>', _answer("200 OK"),
                  # the agent's BYE ends the call for the phone when it is sent (RFC 3261 15.1.1), not
                  # at its 200 OK: the proxy frees the seat when it forwards the BYE
                  '<nop next="free"/>', '<label id="agent_ends"/>', f"<nop>{logged.format(FREE)}</nop>",
                  *_hang_up(), '<label id="free"/>']
    steps += [f"<nop>{logged.format(FREE)}</nop>", '<nop next="end"/>', '<label id="probe"/>', _answer("200 OK"),
              '<label id="end"/>']
    return HEADER + '<scenario name="seat behind a proxy">\n{}\n</scenario>\n'.format("\n".join(steps))


async def seat_phone(workdir: Path, *, port: int, media_port: int, name: str, talk_ms: int | None = None,
                     announce_media: int | None = None) -> Sipp:
    """The phone on ``port`` until stopped; returns once it listens. Its counters
    (``IncomingCall``: the INVITEs that reached it) in :meth:`Sipp.statistics`, its offers in
    :func:`offers`. ``announce_media``: its SDP names that RTP port (a testbed.rtp.ToneLeg's)."""
    return await agent_phone(workdir, port=port, media_port=media_port, name=name,
                             scenario=announced(seat_scenario(talk_ms), announce_media), extra=("-trace_logs",))


def offers(phone: Sipp) -> list[tuple[str, int, int | None]]:
    """Each call that reached ``phone``: Call-ID, the INVITE's and the
    dialog's end's sipp clock in ms (None while up)."""
    calls: dict[str, list[int | None]] = {}
    for log in phone.scenario.parent.glob(phone.scenario.stem + "_*_logs.log"):
        for kind, call_id, tick in _MARK.findall(log.read_text(errors="replace")):
            span = calls.setdefault(call_id, [None, None])
            if kind == OFFER:
                span[0] = int(tick)
            else:  # the first end: an agent's BYE sent, else the dialog's last message
                span[1] = int(tick) if span[1] is None else min(span[1], int(tick))
    return [(c, s, e) for c, (s, e) in calls.items() if s is not None]


def most_at_once(spans: list[tuple[str, int, int | None]]) -> int:
    """The most calls the phone held at one moment (an end before a start at the same ms first)."""
    edges = sorted([(s, 1) for _c, s, _e in spans] + [(e, -1) for _c, _s, e in spans if e is not None])
    held = most = 0
    for _at, step in edges:
        held += step
        most = max(most, held)
    return most


def ok(request: str, extra: str = "") -> str:
    """A 200 to ``request`` (its Via, From, To, Call-ID and CSeq), with ``extra`` header lines:
    how a test's socket standing for a node, a peer or a proxy answers a probe."""
    keep = [line for line in request.split("\r\n\r\n")[0].split("\r\n")[1:]
            if line.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
    return "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + f"\r\n{extra}Content-Length: 0\r\n\r\n"
