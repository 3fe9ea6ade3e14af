"""The scenarios of peers that answer: a seat's softphone or a sub-center gateway handling one
expected call (answer, busy, no answer, hang up, transfer, keys), and a load run's softphone."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from testbed.sipp.dtmf import Key
from testbed.sipp.scenarios import HEADER, SDP_ANSWER, SDP_OFFER

PeerMode = Literal["answer", "busy", "noanswer", "hangup", "transfer", "keys"]
STALE_MARK = "turned away a stale INVITE"


def peer_scenario(mode: PeerMode, caller: str, ring_ms: int = 200, talk_ms: int = 2000, refer_to: str = "",
                  presses: list[Key] | None = None, pcaps: list[Path] | None = None, also: tuple[str, ...] = (),
                  audio: Path | None = None) -> str:
    """A peer that handles the first call from ``caller`` (digits only: the From user) in
    ``mode``, then stops: ``answer`` answers and waits for the BYE, ``hangup`` answers and
    hangs up itself after ``talk_ms`` (an agent ending the call), ``busy`` answers 486,
    ``noanswer`` rings until cancelled, ``transfer`` answers and after ``talk_ms`` blind-transfers
    the call to ``refer_to`` (REFER, as a softphone's transfer key does), ``keys`` answers
    (offering RFC 2833 events), presses ``presses`` (e.g. ``*2`` and a number: an attended
    transfer) and hangs up ``talk_ms`` after the last key.

    An INVITE from any other caller gets 480 and does not stop the peer: it is an earlier
    test's call that rang this address while nothing listened there, and whose INVITE Asterisk
    still retransmits (for 32 s, RFC 3261 timer B) after that call ended. Answering it would
    use up the peer meant for this test's call. sipp counts it as a successful call, so the
    exit code stays 0 (so does an OPTIONS probe, answered 200). ``also``: other From users taken as this call's (an attended transfer's
    consultation shows the citizen or, racing with the agent's bridge, the seat's 12345).
    ``audio`` (``answer`` and ``hangup`` modes): an RTP capture the peer plays as its voice once
    the call is up."""
    if not all(c.isalnum() for c in (caller, *also)):
        raise ValueError(f"caller must be digits (it goes into a regular expression): {caller!r}")
    expected = "|".join((caller, *also))
    send = _reply
    steps = [
        # a qualified trunk's OPTIONS probe (each second in a bed): answered as a call of its own
        # that ends at once, so it leaves nothing open for the peer to wait for when it stops
        '<recv request="OPTIONS" optional="true" next="probe"/>',
        '<recv request="INVITE" crlf="true" rrs="true"><action>'
        f'<ereg regexp="sip:({expected})@" search_in="hdr" header="From:" check_it="false" assign_to="expected"/>'
        '</action></recv>',
        '<nop test="expected" next="expected"/>',
        f'<nop><action><log message="{STALE_MARK} [call_id]"/></action></nop>',
        send("480 Temporarily Unavailable"),
        # no ACK if the 480 came after Asterisk gave the INVITE up: do not wait for it forever
        '<recv request="ACK" timeout="5000" ontimeout="end" next="end"/>',
        '<label id="expected"/>',
        send("100 Trying"),
    ]
    if mode == "busy":
        steps += [send("486 Busy Here"), '<recv request="ACK"/>']
    elif mode == "noanswer":
        # the 487 answers the INVITE, so it needs the INVITE's CSeq, not the CANCEL's (same number)
        steps += [
            send("180 Ringing"),
            '<recv request="CANCEL"><action><ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/></action></recv>',
            send("200 OK"),
            send("487 Request Terminated").replace("[last_CSeq:]", "CSeq: [$cseq] INVITE"),
            '<recv request="ACK"/>',
        ]
    elif mode == "hangup":
        steps += _answer_then_hang_up(ring_ms, talk_ms, audio)
    elif mode == "keys":
        steps += _answer_then_keys(ring_ms, talk_ms, presses or [], pcaps or [])
    elif mode == "transfer":
        if not refer_to.isdigit():
            raise ValueError(f"refer_to must be digits: {refer_to!r}")
        steps += _answer_then_transfer(ring_ms, talk_ms, refer_to)
    else:
        steps += [
            send("180 Ringing"),
            f'<pause milliseconds="{ring_ms}"/>',
            send("200 OK", sdp=True),
            '<recv request="ACK" crlf="true"/>',
            *([f'<nop><action><exec play_pcap_audio="{audio}"/></action></nop>'] if audio is not None else []),
            '<recv request="BYE"/>',
            send("200 OK"),
        ]
    steps += ['<nop><action><exec int_cmd="stop_gracefully"/></action></nop>', '<nop next="end"/>',
              '<label id="probe"/>', send("200 OK"), '<label id="end"/>']
    return HEADER + '<scenario name="peer {}">\n{}\n</scenario>\n'.format(mode, "\n".join(steps))


def _reply(code: str, sdp: bool = False) -> str:
    """A response to the last request, with the SDP answer if ``sdp``."""
    return f"""<send><![CDATA[
SIP/2.0 {code}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
{"Content-Type: application/sdp" + chr(10) if sdp else ""}Content-Length: {"[len]" if sdp else "0"}
{chr(10) + SDP_ANSWER if sdp else ""}]]></send>"""


def _answer_then_hang_up(ring_ms: int, talk_ms: int, audio: Path | None = None) -> list[str]:
    """After the 100 Trying: ring, answer, talk ``talk_ms`` (playing ``audio``), send BYE."""
    play = [f'<nop><action><exec play_pcap_audio="{audio}"/></action></nop>'] if audio is not None else []
    return [
        _reply("180 Ringing"),
        f'<pause milliseconds="{ring_ms}"/>',
        _reply("200 OK", sdp=True),
        '<recv request="ACK" crlf="true"><action>'
        '<ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local"/>'
        '</action></recv>',
        *play,
        f'<pause milliseconds="{talk_ms}"/>',
        """<send><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$local]
To: [$remote]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>""",
        '<recv response="200"/>',
    ]


def _answer_then_keys(ring_ms: int, talk_ms: int, presses: list[Key], pcaps: list[Path]) -> list[str]:
    """After the 100 Trying: ring, answer offering telephone-event 101, press the keys (RFC 2833
    replayed from ``pcaps``), talk ``talk_ms`` more, send BYE (or take Asterisk's)."""
    answer = _answer_then_hang_up(ring_ms, talk_ms)
    answer[2] = answer[2].replace(SDP_ANSWER, SDP_OFFER.replace("o=citizen", "o=peer"))
    keyed = []
    for k, pcap in zip(presses, pcaps):
        keyed += [f'<pause milliseconds="{k.after_ms}"/>', f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>']
    bye = answer[5].replace("CSeq: 2 BYE", "CSeq: 5 BYE")
    return [*answer[:4], *keyed, f'<recv request="BYE" timeout="{talk_ms}" ontimeout="we_end"/>', _reply("200 OK"),
            '<nop next="released"/>', '<label id="we_end"/>', bye, '<recv response="200"/>', '<label id="released"/>']


def _answer_then_transfer(ring_ms: int, talk_ms: int, refer_to: str) -> list[str]:
    """After the 100 Trying: ring, answer, talk ``talk_ms``, REFER the caller to ``refer_to``;
    Asterisk's NOTIFYs (the transfer's progress) are answered by sipp itself (``-aa``), and our
    leg ends with Asterisk's BYE or ours."""
    answer = _answer_then_hang_up(ring_ms, talk_ms)[:5]  # up to the talk, before our BYE
    return [
        *answer,
        f"""<send><![CDATA[
REFER [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$local]
To: [$remote]
[last_Call-ID:]
CSeq: 3 REFER
Max-Forwards: 70
Contact: <sip:[local_ip]:[local_port]>
Refer-To: <sip:{refer_to}@[local_ip]>
Content-Length: 0
]]></send>""",
        '<recv response="202"/>',
        # the NOTIFYs of the transfer's progress are answered by sipp (-aa); then the phone hangs
        # up its own leg, as a softphone does once the transfer is under way
        '<recv request="BYE" timeout="2000" ontimeout="we_end"/>',
        _reply("200 OK"),
        '<nop next="released"/>',
        '<label id="we_end"/>',
        """<send><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$local]
To: [$remote]
[last_Call-ID:]
CSeq: 4 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>""",
        '<recv response="200"/>',
        '<label id="released"/>',
    ]


def agent_scenario(ring_ms: int = 200, talk_ms: int = 2000, audio: Path | None = None) -> str:
    """A seat's softphone for a load run: answers every call it is offered (any caller, any
    number at once) and hangs up after ``talk_ms``, as an agent ending a short call would
    (playing ``audio``, an RTP capture, as its voice). A call cancelled while it rings is
    answered 487 and counts as failed in sipp's statistics (the queue rang this seat and then another)."""
    steps = [
        '<recv request="INVITE" crlf="true" rrs="true"/>',
        _reply("100 Trying"),
        *_answer_then_hang_up(ring_ms, talk_ms, audio),
    ]
    return HEADER + '<scenario name="agent">\n{}\n</scenario>\n'.format("\n".join(steps))
