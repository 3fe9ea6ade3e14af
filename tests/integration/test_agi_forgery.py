"""Made-up AGI environments against the bed's engine while a real citizen's call waits in the
queue (finding 9): from an address not allowed the engine cuts the connection before it reads;
from loopback, an environment reusing the live call's uniqueid on another channel neither
replaces the call's record in Redis nor its ticket's IVR path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ivr.store import keyspace
from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, until
from testbed.sipp import keys

pytestmark = pytest.mark.usefixtures("no_call_outlives_the_test")


async def forge(port: int, uniqueid: str, channel: str, *, source: str = "127.0.0.1") -> list[str]:
    """Play Asterisk with a made-up environment; every command answered; the commands sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(f"agi_network_script: ivr\nagi_channel: {channel}\nagi_uniqueid: {uniqueid}\n"
                 f"agi_callerid: 13800000666\nagi_arg_1: 12345\n\n".encode())
    seen = []
    try:
        while line := (await reader.readline()).decode().strip():
            seen.append(line)
            writer.write(b"200 result=9\n" if line.startswith("GET DATA") else b"200 result=0\n")
    except ConnectionResetError:
        pass
    writer.close()
    return seen


async def test_a_forged_environment_cannot_take_a_live_calls_record_or_reach_the_engine_from_elsewhere(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, redis: Any,
) -> None:
    assert engine.state
    port = engine.state.agi_port
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller)
    sipp, _ = await phones.call("12345", keys("0", first_ms=500), hold_ms=12_000, caller=caller)  # no seat: waits
    call = await asyncio.wait_for(joined, 30)
    uniqueid, channel = call["Uniqueid"], call["Channel"]
    real = await until(lambda: redis.get(keyspace.call(uniqueid)), timeout=10)
    assert json.loads(real)["channel"] == channel and json.loads(real)["confirmed"] is True

    assert await forge(port, "1796160000.777", "PJSIP/pstn-00000777", source="127.0.0.3") == []  # not allowed

    assert await forge(port, uniqueid, "PJSIP/pstn-0000ffff")  # allowed address, the live call's uniqueid
    assert await forge(port, "1796160000.778", "PJSIP/pstn-00000778")  # after it in the engine's journal
    await until(lambda: redis.get(keyspace.call("1796160000.778")), timeout=10)  # so the forgery was handled
    assert await redis.get(keyspace.call("1796160000.777")) is None
    assert await redis.get(keyspace.call(uniqueid)) == real

    ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.linkedid == uniqueid and ticket.caller == caller and ticket.ivr.keys == ["0"]
    assert await sipp.wait(30) == 0, sipp.output()
