"""The scenarios of calls we place: a citizen's call, an agent's feature code, a softphone's
REGISTER. sipp fills the bracketed keywords; keys and timings are data."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from testbed.sipp.dtmf import PCAP_DIR, PCAP_NAMES, Key

HEADER = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'


def _sdp(owner: str, payloads: str, rtpmaps: list[str]) -> str:
    """SDP in sipp's keyword syntax; sipp fills addresses, ports and [len]."""
    lines = [
        "v=0", f"o={owner} 53655765 2353687637 IN IP[local_ip_type] [local_ip]", "s=-",
        "c=IN IP[media_ip_type] [media_ip]", "t=0 0", f"m=audio [media_port] RTP/AVP {payloads}",
        *rtpmaps,
    ]
    return "\n".join(lines) + "\n"


# The citizen offers PCMA + RFC 2833 events on payload 101, as sipp's DTMF captures use.
SDP_OFFER = _sdp("citizen", "8 101", ["a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"])
SDP_ANSWER = _sdp("peer", "8 0", ["a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000"])

def in_dialog(method: str, cseq: int, contact: str = "", rest: str = "Content-Length: 0\n", routed: bool = False) -> str:
    """A request within a call we placed (BYE, ACK, INFO): the dialog's headers, ``contact``
    (a Contact line or nothing), Max-Forwards, then ``rest`` (no body by default). ``routed``:
    the call went through a proxy that record-routed it (the 200 was received with ``rrs``): the
    request goes to the far end's Contact with the route set, through that proxy."""
    target, route = ("[next_url]", "[routes]\n") if routed else ("sip:[service]@[remote_ip]:[remote_port]", "")
    return f"""{method} {target} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: {cseq} {method}
{route}{contact}Max-Forwards: 70
{rest}"""


def hold_then_bye(hold_ms: int, routed: bool = False) -> str:
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
{in_dialog("BYE", 99, routed=routed)}]]></send>
<recv response="200" optional="true"/>
<label id="end"/>
</scenario>
"""

def citizen_scenario(caller: str, presses: list[Key], hold_ms: int, dtmf: Literal["rfc2833", "info"],
                     pcaps: list[Path] | None = None, dialed: str = "[service]", audio: Path | None = None) -> str:
    """A citizen's call from ``caller`` to ``dialed`` (sipp's ``-s`` by default; ``[field1]``: each
    call's own, from the injection file); ``audio``: an RTP capture the citizen then plays as
    their voice (testbed/sipp/tones.py), until it ends or the call does."""
    contact = f"Contact: sip:{caller}@[local_ip]:[local_port]\n"
    steps = []
    for i, k in enumerate(presses):
        steps.append(f'<pause milliseconds="{k.after_ms}"/>')
        if dtmf == "rfc2833":
            pcap = pcaps[i] if pcaps else PCAP_DIR / PCAP_NAMES[k.digit]
            steps.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        else:
            steps.append(
                f"""<send><![CDATA[
{in_dialog("INFO", 10 + i, contact, "")}Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={k.digit}
Duration=160
]]></send>
<recv response="200"/>"""
            )
    if audio is not None:  # after the keys' own captures have ended: one RTP stream at a time
        steps += ['<pause milliseconds="500"/>', f'<nop><action><exec play_pcap_audio="{audio}"/></action></nop>']
    body = "\n".join(steps)
    return HEADER + f"""<scenario name="citizen call">
<send retrans="500"><![CDATA[
INVITE sip:{dialed}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{dialed}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:{caller}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"/>
<send><![CDATA[
{in_dialog("ACK", 1, contact)}]]></send>
{body}
{hold_then_bye(hold_ms)}"""

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
    return HEADER + f"""<scenario name="agent feature code">
<send retrans="500"><![CDATA[
{invite.format(agent=agent, cseq=1, auth="")}{SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="401" auth="true"/>
<send><![CDATA[
{in_dialog("ACK", 1)}]]></send>
<send retrans="500"><![CDATA[
{invite.format(agent=agent, cseq=2, auth="[authentication]" + chr(10))}{SDP_OFFER}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200"/>
<send><![CDATA[
{in_dialog("ACK", 2)}]]></send>
{hold_then_bye(hold_ms)}"""

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
    return HEADER + f"""<scenario name="register">
<send retrans="500"><![CDATA[
{register.format(agent=agent, cseq=1, port=contact_port, expires=expires, auth="")}]]></send>
<recv response="401" auth="true"/>
<send retrans="500"><![CDATA[
{register.format(agent=agent, cseq=2, port=contact_port, expires=expires, auth="[authentication]" + chr(10))}]]></send>
<recv response="200"/>
</scenario>
"""
