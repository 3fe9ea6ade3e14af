"""No DNS lookup on the call path: a bed whose only resolver records every query and answers
none (a hotline network without DNS), and a real citizen call through the 12345 menu into the
general queue, answered by a seat's softphone.

Without ``media_address`` on the endpoints, Asterisk looked up the host's own name and then
A.ROOT-SERVERS.NET for each call leg's RTCP (acl.c ``ast_find_ourip``), each lookup stalling
the call (with glibc's default timeouts this call never reached the agent).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import Phones, call_record, for_caller, until
from testbed.pytest_plugin import kept_logs
from testbed.sipp import keys


@pytest.fixture(scope="module")
def bed_without_dns(config_dir: Path) -> Iterator[TestBed]:
    """Its own bed (the session's keeps the host's resolver), built as the session's is."""
    with TestBed(config_dir, name=f"pytest-nodns-{os.getpid()}", dns="none").running(kept_logs("testbed-logs-nodns")) as tb:
        yield tb


@pytest.fixture
async def ami_nodns(bed_without_dns: TestBed) -> AsyncIterator[AmiClient]:
    st = bed_without_dns.state
    assert st
    client = AmiClient("127.0.0.1", st.ami_port, "testbed", st.testbed_ami_secret)
    await client.connect()
    yield client
    client.close()


async def test_given_no_dns_when_a_citizen_is_answered_by_a_seat_then_asterisk_made_no_lookup(
    bed_without_dns: TestBed, ami_nodns: AmiClient, tmp_path: Path
) -> None:
    bed, ami = bed_without_dns, ami_nodns
    assert bed.dns and bed.state
    phones = Phones(bed, tmp_path)
    redis = aioredis.Redis.from_url(bed.state.redis_url, decode_responses=True)
    try:
        caller = phones.next_caller()
        connected = ami.wait_for("AgentConnect", for_caller(caller))
        hung_up = ami.wait_for("Hangup", lambda e: e.get("CallerIDNum") == caller and e["Channel"].startswith("PJSIP/pstn-"))
        seats = await phones.seats("general", caller, mode="hangup", talk_ms=1000)
        started = time.time()

        sipp, _ = await phones.call("12345", keys("1", first_ms=1500), hold_ms=20_000, caller=caller)

        event = await asyncio.wait_for(connected, 20)
        assert event["Queue"] == "q-general"
        await asyncio.wait_for(hung_up, 20)
        assert await sipp.wait(20) == 0, sipp.output()
        assert await seats[event["Interface"].removeprefix("PJSIP/")].wait(20) == 0
        record = await call_record(redis, caller)
        assert record["route"] == {"type": "queue", "queue": "general", "priority": 0, "one_key": False}
        assert record["variables"]["request_type"] == "consult"
        assert [str(q) for q in bed.dns.since(started)] == []

        # the recorder does hear Asterisk: a SIP URI with a host name makes it look one up
        await ami.action({"Action": "Originate", "Channel": "PJSIP/agent1001/sip:probe@dns-probe.invalid",
                          "Application": "Wait", "Data": "1", "Async": "true", "Timeout": "3000"})
        await until(lambda: any(q.name.startswith("dns-probe.invalid") for q in bed.dns.since(started)), 15)
    finally:
        await phones.close()
        await redis.aclose()
