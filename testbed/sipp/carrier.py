"""The carrier's side of a cluster (issue 20): citizens' calls sent to the SIP proxies the way a
carrier sends them, and a stranger's INVITE the proxies must refuse.

A carrier gives a hotline number a primary and a secondary destination: each call goes to the
primary (proxy 1); when no provisional answer (100 Trying) comes back within the carrier's timer,
the same call is sent to the secondary (proxy 2). That is the failover the carrier does, not the
proxies: :func:`carrier_scenario` plays it per call, so one sipp can carry many overlapping calls.
"""

from __future__ import annotations

from pathlib import Path

from testbed.sipp.run import Sipp, _run, _statistics_args, announced
from testbed.sipp.scenarios import HEADER, SDP_OFFER, hold_then_bye, in_dialog

SECONDARY_AFTER_MS = 1000  # the carrier's timer: no 100 Trying from the primary within it → the secondary
ADMITTED, REFUSED = "call admitted", "call refused"  # each call's outcome in sipp's log (outcomes=True)


def _invite(caller: str, cseq: int, target: str, dialed: str = "[service]") -> str:
    return f"""<send><![CDATA[
INVITE sip:{dialed}@{target} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{dialed}@{target}>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{SDP_OFFER}]]></send>"""


def carrier_scenario(caller: str, secondary_port: int, hold_ms: int, after_ms: int = SECONDARY_AFTER_MS,
                     dialed: str = "[service]", outcomes: bool = False) -> str:
    """One citizen's call: INVITE to the primary (sipp's remote address); no 100 within
    ``after_ms`` → the same call to the secondary (127.0.0.1:``secondary_port``). Answered, it
    holds ``hold_ms`` (or takes the node's BYE); ACK and BYE follow the proxy's Record-Route.
    ``outcomes``: a 500 or 503 (every node full) is an expected end, ACKed, and each call logs
    :data:`ADMITTED` or :data:`REFUSED` (sipp's ``-trace_logs``): a load above the cluster's cap."""
    contact = f"Contact: sip:{caller}@[local_ip]:[local_port]\n"
    # a proxy turns the last node's 503 into a 500 (RFC 3261 16.7); its own 503: no node selectable
    refused = f"""<recv response="500" optional="true" next="refused"/>
<recv response="503" optional="true" next="refused"/>
<recv response="200" rrs="true" next="admitted"/>
<label id="refused"/>
{_ack_final("[last_Via:]", dialed)}
<nop next="end"><action><log message="{REFUSED} [call_id]"/></action></nop>
<label id="admitted"/>
<nop><action><log message="{ADMITTED} [call_id]"/></action></nop>
""" if outcomes else '<recv response="200" rrs="true"/>\n'
    return HEADER + f"""<scenario name="carrier call">
{_invite(caller, 1, "[remote_ip]:[remote_port]", dialed)}
<recv response="100" timeout="{after_ms}" ontimeout="secondary"/>
<nop next="progress"/>
<label id="secondary"/>
<nop><action><setdest host="127.0.0.1" port="{secondary_port}" protocol="udp"/></action></nop>
{_invite(caller, 1, f"127.0.0.1:{secondary_port}", dialed)}
<recv response="100" optional="true"/>
<label id="progress"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
{refused}<send><![CDATA[
{in_dialog("ACK", 1, contact, routed=True)}]]></send>
{hold_then_bye(hold_ms, routed=True)}"""


def stranger_scenario() -> str:
    """An INVITE from an address that is not the carrier's: the proxy must answer 403 (ACKed)."""
    return HEADER + f"""<scenario name="stranger call">
{_invite("13700000000", 1, "[remote_ip]:[remote_port]")}
<recv response="403"/>
{_ack_final("Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]")}
</scenario>
"""


def _ack_final(via: str, dialed: str = "[service]") -> str:
    """The ACK of a final failure to our INVITE (sent to the proxy that answered), with ``via``
    (its Request-URI the INVITE's: ``dialed``)."""
    return f"""<send><![CDATA[
ACK sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
{via}
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>"""


async def carrier_calls(workdir: Path, *, primary_port: int, secondary_port: int, local_port: int, media_port: int,
                        dialed: str, callers: list[str], rate: float, hold_ms: int, name: str,
                        dialed_each: list[str] | None = None, outcomes: bool = False,
                        announce_media: int | None = None) -> Sipp:
    """One call from each of ``callers`` (``rate`` per second, all allowed up at once) from the
    carrier's address (``local_port``), each to the primary proxy first; ``dialed_each``: the
    number each caller dials (one sipp, the carrier's one port, for calls to several numbers);
    ``outcomes``: see :func:`carrier_scenario`; count them with :func:`outcome_count`;
    ``announce_media``: the SDP names that RTP port (a testbed.rtp.ToneLeg's; one call then)."""
    workdir.mkdir(parents=True, exist_ok=True)
    numbers = workdir / f"{name}.csv"
    if dialed_each is not None and (len(dialed_each) != len(callers) or not all(d.isdigit() for d in dialed_each)):
        raise ValueError(f"dialed_each: one number of digits per caller, got {dialed_each!r}")
    each = dialed_each or [dialed] * len(callers)
    numbers.write_text("SEQUENTIAL\n" + "".join(f"{c};{d};\n" for c, d in zip(callers, each)))
    return await _run(
        workdir, name, announced(carrier_scenario("[field0]", secondary_port, hold_ms, dialed="[field1]",
                                                  outcomes=outcomes), announce_media),
        # -nr: no retransmissions (loopback loses nothing); a retransmitted INVITE would follow the
        # call to the secondary after setdest and draw a 100 for the primary's transaction there
        ["-nr", "-p", str(local_port), "-mp", str(media_port), "-m", str(len(callers)), "-l", str(len(callers)),
         "-r", f"{rate:g}", "-inf", str(numbers), "-s", dialed, "-timeout", f"{hold_ms // 1000 + 120}s",
         "-timeout_error", *(["-trace_logs"] if outcomes else []), *_statistics_args(workdir, name),
         f"127.0.0.1:{primary_port}"],
    )


def outcome_count(sipp: Sipp, outcome: str) -> int:
    """Calls of a finished ``carrier_calls(outcomes=True)`` that logged ``outcome``."""
    log = sipp.scenario.with_name(f"{sipp.scenario.stem}_{sipp.proc.pid}_logs.log")  # this run's, not an earlier one's
    return log.read_text(errors="replace").count(outcome + " ") if log.exists() else 0


async def stranger_call(workdir: Path, *, proxy_port: int, local_port: int, dialed: str, name: str) -> Sipp:
    """One INVITE to the proxy from ``local_port`` (not the carrier's port)."""
    return await _run(workdir, name, stranger_scenario(),
                      ["-p", str(local_port), "-m", "1", "-s", dialed, "-timeout", "30s", "-timeout_error",
                       f"127.0.0.1:{proxy_port}"])
