"""Real SIP peers for the test bed, played by sipp (Debian package ``sip-tester``).

- :func:`citizen_call`: a citizen dials a number from the carrier trunk and presses keys
  (RFC 2833 events replayed from sipp's own captures, or SIP INFO), then hangs up after a
  while unless Asterisk hangs up first.
- :func:`sip_peer`: a seat's softphone or a sub-center gateway that answers, rejects with
  486 Busy, or rings without answering the call of the caller its test expects, then stops.

Scenarios are generated per call, so keys and timings are data, not a file per case.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PCAP_DIR = Path("/usr/share/sip-tester")
PCAP_NAMES = {**{str(d): f"dtmf_2833_{d}.pcap" for d in range(10)}, "*": "dtmf_2833_star.pcap", "#": "dtmf_2833_pound.pcap"}

_HEADER = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'

def _sdp(owner: str, payloads: str, rtpmaps: list[str]) -> str:
    """SDP in sipp's keyword syntax; sipp fills addresses, ports and [len]."""
    lines = [
        "v=0", f"o={owner} 53655765 2353687637 IN IP[local_ip_type] [local_ip]", "s=-",
        "c=IN IP[media_ip_type] [media_ip]", "t=0 0", f"m=audio [media_port] RTP/AVP {payloads}",
        *rtpmaps,
    ]
    return "\n".join(lines) + "\n"


# The citizen offers PCMA + RFC 2833 events on payload 101, as sipp's DTMF captures use.
_SDP_OFFER = _sdp("citizen", "8 101", ["a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"])
_SDP_ANSWER = _sdp("peer", "8 0", ["a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000"])


@dataclass(frozen=True)
class Key:
    """One key press ``digit`` sent ``after_ms`` after the previous step."""

    digit: str
    after_ms: int = 300


def keys(spec: str, first_ms: int = 1500, gap_ms: int = 300) -> list[Key]:
    """``keys("10")`` → press 1 after ``first_ms``, then 0 after ``gap_ms``."""
    return [Key(d, first_ms if i == 0 else gap_ms) for i, d in enumerate(spec)]


_pcap_ids = itertools.count()


def dtmf_pcaps(workdir: Path, presses: list[Key]) -> list[Path]:
    """One RFC 2833 capture per press, renumbered so RTP timestamps and sequence numbers rise.

    sipp replays a capture's RTP headers as recorded, and the stock captures carry unrelated
    timestamps (``*`` is later than ``0``; a key twice repeats one). Asterisk drops an event
    whose timestamp is not after the last one's, so ``*`` then ``0``, or ``1`` then ``1``,
    would lose the second key.
    """
    out = []
    for i, k in enumerate(presses):
        data = bytearray((PCAP_DIR / PCAP_NAMES[k.digit]).read_bytes())
        offset, first = 24, None  # pcap global header; then Ethernet/IPv4/UDP/RTP packets
        while offset + 16 <= len(data):
            length = int.from_bytes(data[offset + 8:offset + 12], "little")
            packet = offset + 16
            udp = packet + 14 + (data[packet + 14] & 0x0F) * 4
            rtp = udp + 8
            seq = int.from_bytes(data[rtp + 2:rtp + 4], "big")
            first = seq if first is None else first
            data[udp + 6:udp + 8] = b"\0\0"  # no UDP checksum (the header changes)
            data[rtp + 2:rtp + 4] = ((i + 1) * 100 + seq - first).to_bytes(2, "big")
            data[rtp + 4:rtp + 8] = ((i + 1) * 16000).to_bytes(4, "big")  # one event: one timestamp
            offset = packet + length
        path = workdir / f"dtmf-{os.getpid()}-{next(_pcap_ids)}.pcap"
        path.write_bytes(bytes(data))
        out.append(path)
    return out


def _hold_then_bye(hold_ms: int) -> str:
    """The end of a call we placed: Asterisk's BYE within ``hold_ms`` is answered, else we hang up."""
    return f"""<recv request="BYE" timeout="{hold_ms}" ontimeout="we_hang_up"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
<nop next="end"/>
<label id="we_hang_up"/>
<send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: 99 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
<recv response="200" optional="true"/>
<label id="end"/>
</scenario>
"""


def citizen_scenario(caller: str, presses: list[Key], hold_ms: int, dtmf: Literal["rfc2833", "info"],
                     pcaps: list[Path] | None = None) -> str:
    steps = []
    for i, k in enumerate(presses):
        steps.append(f'<pause milliseconds="{k.after_ms}"/>')
        if dtmf == "rfc2833":
            pcap = pcaps[i] if pcaps else PCAP_DIR / PCAP_NAMES[k.digit]
            steps.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        else:
            steps.append(
                f"""<send><![CDATA[
INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: {10 + i} INFO
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={k.digit}
Duration=160
]]></send>
<recv response="200"/>"""
            )
    body = "\n".join(steps)
    return _HEADER + f"""<scenario name="citizen call">
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
{body}
{_hold_then_bye(hold_ms)}"""


def agent_dial_scenario(agent: str, hold_ms: int) -> str:
    """An agent's softphone dials a feature code (``-s *71``): INVITE, answer the digest
    challenge as ``agent`` (``-au``/``-ap``), hear the confirmation, hang up after ``hold_ms``
    unless Asterisk hangs up first."""
    invite = """INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{agent}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag01[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: sip:{agent}@[local_ip]:[local_port]
Max-Forwards: 70
{auth}Content-Type: application/sdp
Content-Length: [len]

"""
    ack = """ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0
"""
    return _HEADER + f"""<scenario name="agent feature code">
<send retrans="500"><![CDATA[
{invite.format(agent=agent, cseq=1, auth="")}{_SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="401" auth="true"/>
<send><![CDATA[
{ack.format(cseq=1)}]]></send>
<send retrans="500"><![CDATA[
{invite.format(agent=agent, cseq=2, auth="[authentication]" + chr(10))}{_SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200"/>
<send><![CDATA[
{ack.format(cseq=2)}]]></send>
{_hold_then_bye(hold_ms)}"""


PeerMode = Literal["answer", "busy", "noanswer", "hangup", "transfer", "keys"]
STALE_MARK = "turned away a stale INVITE"


def peer_scenario(mode: PeerMode, caller: str, ring_ms: int = 200, talk_ms: int = 2000, refer_to: str = "",
                  presses: list[Key] | None = None, pcaps: list[Path] | None = None, also: tuple[str, ...] = ()) -> str:
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
    exit code stays 0. ``also``: other From users taken as this call's (an attended transfer's
    consultation shows the citizen or, racing with the agent's bridge, the seat's 12345)."""
    if not all(c.isalnum() for c in (caller, *also)):
        raise ValueError(f"caller must be digits (it goes into a regular expression): {caller!r}")
    expected = "|".join((caller, *also))
    send = _reply
    steps = [
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
        steps += _answer_then_hang_up(ring_ms, talk_ms)
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
            '<recv request="BYE"/>',
            send("200 OK"),
        ]
    steps += ['<nop><action><exec int_cmd="stop_gracefully"/></action></nop>', '<label id="end"/>']
    return _HEADER + '<scenario name="peer {}">\n{}\n</scenario>\n'.format(mode, "\n".join(steps))


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
{chr(10) + _SDP_ANSWER if sdp else ""}]]></send>"""


def _answer_then_hang_up(ring_ms: int, talk_ms: int) -> list[str]:
    """After the 100 Trying: ring, answer, talk ``talk_ms``, send BYE."""
    return [
        _reply("180 Ringing"),
        f'<pause milliseconds="{ring_ms}"/>',
        _reply("200 OK", sdp=True),
        '<recv request="ACK" crlf="true"><action>'
        '<ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local"/>'
        '</action></recv>',
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
    answer[2] = answer[2].replace(_SDP_ANSWER, _SDP_OFFER.replace("o=citizen", "o=peer"))
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


def agent_scenario(ring_ms: int = 200, talk_ms: int = 2000) -> str:
    """A seat's softphone for a load run: answers every call it is offered (any caller, any
    number at once) and hangs up after ``talk_ms``, as an agent ending a short call would.
    A call cancelled while it rings is answered 487 and counts as failed in sipp's
    statistics (the queue rang this seat and then another)."""
    steps = [
        '<recv request="INVITE" crlf="true" rrs="true"/>',
        _reply("100 Trying"),
        *_answer_then_hang_up(ring_ms, talk_ms),
    ]
    return _HEADER + '<scenario name="agent">\n{}\n</scenario>\n'.format("\n".join(steps))


class Sipp:
    """A running sipp process (asyncio)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path, scenario: Path):
        self.proc = proc
        self.log = log
        self.scenario = scenario

    async def wait(self, timeout: float = 60) -> int:
        """Exit code: 0 = every call went as scripted (a peer: its call, and any stale INVITE
        it turned away). Raises TimeoutError with sipp's output if it is still running."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"sipp still running after {timeout} s:\n{self.output()}") from None

    def output(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        errors = sorted(self.scenario.parent.glob(self.scenario.stem + "*errors.log"))
        for e in errors:
            text += "\n--- " + e.name + "\n" + e.read_text(errors="replace")[-3000:]
        return text[-6000:]

    def statistics(self) -> dict[str, int]:
        """sipp's cumulative counters (``SuccessfulCall``, ``FailedCall``, ``OutgoingCall``,
        ``IncomingCall``, ...) from its last statistics line; {} before the first one."""
        path = self.scenario.with_name(self.scenario.stem + ".stat.csv")
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        if len(lines) < 2:
            return {}
        header, last = lines[0].split(";"), lines[-1].split(";")
        return {k.removesuffix("(C)"): int(v) for k, v in zip(header, last) if k.endswith("(C)") and v.strip().isdigit()}

    def turned_away(self) -> int:
        """How many stale INVITEs (another caller's) this peer refused, from its sipp log."""
        logs = self.scenario.parent.glob(self.scenario.stem + "_*_logs.log")
        return sum(p.read_text(errors="replace").count(STALE_MARK) for p in logs)

    async def wait_listening(self, port: int, timeout: float = 10.0) -> None:
        """Until this sipp has bound UDP ``port`` (read from /proc/net/udp, never by binding)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not _udp_bound(port):
            if self.proc.returncode is not None:
                raise RuntimeError(f"sipp exited ({self.proc.returncode}) before listening on {port}:\n{self.output()}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"sipp did not listen on UDP {port} within {timeout} s:\n{self.output()}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def _udp_bound(port: int) -> bool:
    suffix = f":{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1].endswith(suffix) for line in itertools.islice(table, 1, None))


async def _run(workdir: Path, name: str, scenario: str, args: list[str]) -> Sipp:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.xml"
    path.write_text(scenario, encoding="iso-8859-1")
    log = workdir / f"{name}.log"
    out = open(log, "wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(path), "-nostdin", "-trace_err", "-i", "127.0.0.1", "-mi", "127.0.0.1",
            *args, stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            cwd=workdir, start_new_session=True,
        )
    finally:
        out.close()
    return Sipp(proc, log, path)


async def citizen_call(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, dialed: str,
    caller: str = "13800138000", presses: list[Key] | None = None, hold_ms: int = 8000,
    dtmf: Literal["rfc2833", "info"] = "rfc2833", name: str | None = None,
) -> Sipp:
    """Place one citizen call into Asterisk from ``local_port`` (matched as the pstn trunk)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pcaps = dtmf_pcaps(workdir, presses or []) if dtmf == "rfc2833" else None
    scenario = citizen_scenario(caller, presses or [], hold_ms, dtmf, pcaps)
    name = name or f"call-{dialed}-{os.getpid()}-{local_port}-{media_port}"
    return await _run(
        workdir, name, scenario,
        ["-p", str(local_port), "-mp", str(media_port), "-m", "1", "-s", dialed,
         "-timeout", "120s", "-timeout_error", f"127.0.0.1:{sip_port}"],
    )


async def citizen_calls(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, dialed: str, callers: list[str],
    rate: float, presses: list[Key] | None = None, hold_ms: int = 120_000, name: str = "citizens",
) -> Sipp:
    """Many citizens from one sipp on ``local_port``: one call from each number of ``callers``
    (sipp's ``[field0]``), ``rate`` new calls per second, all allowed up at once; each presses
    ``presses`` as :func:`citizen_call` does. Per-call results: :meth:`Sipp.statistics`."""
    workdir.mkdir(parents=True, exist_ok=True)
    numbers = workdir / f"{name}.csv"
    numbers.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
    scenario = citizen_scenario("[field0]", presses or [], hold_ms, "rfc2833", dtmf_pcaps(workdir, presses or []))
    return await _run(
        workdir, name, scenario,
        ["-p", str(local_port), "-mp", str(media_port), "-m", str(len(callers)), "-l", str(len(callers)),
         "-r", f"{rate:g}", "-inf", str(numbers), "-s", dialed, "-timeout", f"{hold_ms // 1000 + 120}s",
         "-timeout_error", *_statistics_args(workdir, name), f"127.0.0.1:{sip_port}"],
    )


async def agent_phone(workdir: Path, *, port: int, media_port: int, ring_ms: int = 200, talk_ms: int = 2000,
                      name: str | None = None) -> Sipp:
    """A seat's softphone that answers every call (:func:`agent_scenario`) until stopped;
    returns once it listens on ``port``."""
    name = name or f"agent-phone-{port}"
    phone = await _run(workdir, name, agent_scenario(ring_ms, talk_ms),
                       ["-p", str(port), "-mp", str(media_port), *_statistics_args(workdir, name)])
    try:
        await phone.wait_listening(port)
    except BaseException:
        await phone.stop()
        raise
    return phone


def _statistics_args(workdir: Path, name: str) -> list[str]:
    """sipp's counters written to ``<name>.stat.csv`` every second (read by Sipp.statistics)."""
    return ["-trace_stat", "-stf", str(workdir / f"{name}.stat.csv"), "-fd", "1"]


async def sip_peer(
    workdir: Path, *, port: int, media_port: int, caller: str, mode: PeerMode = "answer",
    ring_ms: int = 200, talk_ms: int = 2000, name: str | None = None, refer_to: str = "",
    presses: list[Key] | None = None, also: tuple[str, ...] = (),
) -> Sipp:
    """A softphone/gateway on ``port`` that handles the call from ``caller`` in ``mode``.

    Returns once sipp listens on ``port``, so a call placed next cannot find it absent."""
    name = name or f"peer-{port}-{mode}"
    pcaps = dtmf_pcaps(workdir, presses) if presses else None
    peer = await _run(
        workdir, name, peer_scenario(mode, caller, ring_ms, talk_ms, refer_to, presses, pcaps, also),
        ["-p", str(port), "-mp", str(media_port), "-timeout", "120s", "-trace_logs", "-aa"],
    )
    try:
        await peer.wait_listening(port)
    except BaseException:
        await peer.stop()
        raise
    return peer


async def agent_dial(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, agent: str, secret: str, code: str,
    hold_ms: int = 6000,
) -> Sipp:
    """An agent's softphone, authenticated as ``agent``, dials ``code`` (a feature code)."""
    return await _run(
        workdir, f"agent-{agent}-{local_port}", agent_dial_scenario(agent, hold_ms),
        ["-p", str(local_port), "-mp", str(media_port), "-m", "1", "-s", code, "-au", agent, "-ap", secret,
         "-timeout", "60s", "-timeout_error", f"127.0.0.1:{sip_port}"],
    )


def register_scenario(agent: str, contact_port: int, expires: int) -> str:
    """A softphone registers ``agent`` (digest auth, ``-au``/``-ap``) with its contact at
    ``contact_port`` (where another sipp answers its calls); ``expires=0`` unregisters."""
    register = """REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{agent}@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag02[call_number]
To: <sip:{agent}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{agent}@[local_ip]:{port}>
Expires: {expires}
Max-Forwards: 70
{auth}Content-Length: 0
"""
    return _HEADER + f"""<scenario name="register">
<send retrans="500"><![CDATA[
{register.format(agent=agent, cseq=1, port=contact_port, expires=expires, auth="")}]]></send>
<recv response="401" auth="true"/>
<send retrans="500"><![CDATA[
{register.format(agent=agent, cseq=2, port=contact_port, expires=expires, auth="[authentication]" + chr(10))}]]></send>
<recv response="200"/>
</scenario>
"""


async def register(
    workdir: Path, *, sip_port: int, local_port: int, agent: str, secret: str, contact_port: int, expires: int = 300,
) -> Sipp:
    """Register (or, ``expires=0``, unregister) ``agent``'s softphone at ``contact_port``."""
    return await _run(
        workdir, f"register-{agent}-{contact_port}-{expires}", register_scenario(agent, contact_port, expires),
        ["-p", str(local_port), "-m", "1", "-au", agent, "-ap", secret, "-timeout", "30s",
         "-timeout_error", f"127.0.0.1:{sip_port}"],
    )
