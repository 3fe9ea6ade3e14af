"""The carrier's gateway towards citizens: where a node's calls *out* go (``sip.pstn_contact``, the
``pstn`` AOR: a callback's ``Dial(PJSIP/<number>@pstn)``). It answers every call, whoever it is
for, and logs the number each was for (the Request-URI's user), so that a test can tell that
each citizen was rung, and none twice; the node (the seat) ends each call."""

from __future__ import annotations

import re
from pathlib import Path

from testbed.sipp.peers import _reply
from testbed.sipp.run import Sipp, _run, _statistics_args
from testbed.sipp.scenarios import HEADER

CALLED = "CALLED"  # the gateway's log line per call: CALLED <number> (<the Request-URI's start>)


def gateway_scenario(ring_ms: int = 200) -> str:
    """Any INVITE: log its number, ring, answer, wait for the node's BYE."""
    steps = [
        '<recv request="INVITE" crlf="true" rrs="true"><action>'
        '<ereg regexp="INVITE sip:([+0-9]+)@" search_in="msg" check_it="true" assign_to="uri,number"/>'
        f'<log message="{CALLED} [$number] ([$uri])"/>'
        '</action></recv>',
        _reply("100 Trying"),
        _reply("180 Ringing"),
        f'<pause milliseconds="{ring_ms}"/>',
        _reply("200 OK", sdp=True),
        '<recv request="ACK" crlf="true"/>',
        '<recv request="BYE"/>',
        _reply("200 OK"),
    ]
    return HEADER + '<scenario name="carrier gateway">\n{}\n</scenario>\n'.format("\n".join(steps))


async def carrier_gateway(workdir: Path, *, port: int, media_port: int, name: str = "") -> Sipp:
    """The gateway on ``port`` (the node's ``pstn_contact``), answering until stopped; returns
    once it listens."""
    name = name or f"gateway-{port}"
    gateway = await _run(workdir, name, gateway_scenario(),
                         ["-p", str(port), "-mp", str(media_port), "-trace_logs", *_statistics_args(workdir, name)])
    try:
        await gateway.wait_listening(port)
    except BaseException:
        await gateway.stop()
        raise
    return gateway


def called(gateway: Sipp) -> list[str]:
    """The numbers the gateway was called for, in order (one entry per call)."""
    logs = gateway.scenario.parent.glob(gateway.scenario.stem + "_*_logs.log")
    return [m.group(1) for p in logs for m in re.finditer(rf"^{CALLED} (\S+) ", p.read_text(errors="replace"), re.M)]
