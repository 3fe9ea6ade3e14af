"""A citizen's SIP call into the real Asterisk reaches the engine, which plays prompts, reads
the key the caller pressed, and hands the call to the dialplan's queue."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami.client import AmiClient
from testbed.calls import Phones, call_record
from testbed.sipp import keys


@pytest.mark.parametrize("dtmf", ["rfc2833", "info"])
async def test_given_a_citizen_presses_2_when_calling_12345_then_engine_reads_it_and_queues_a_complaint(
    engine, phones: Phones, ami: AmiClient, redis, dtmf: str
) -> None:
    caller = phones.next_caller()
    joined = ami.wait_for("QueueCallerJoin", lambda e: e.get("CallerIDNum") == caller)
    hung_up = ami.wait_for("Hangup", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", keys("2", first_ms=1500), hold_ms=3000, dtmf=dtmf, caller=caller)

    event = await asyncio.wait_for(joined, 20)
    assert event["Queue"] == "q-general"
    assert (await asyncio.wait_for(hung_up, 20))["Channel"].startswith("PJSIP/pstn-")
    assert await sipp.wait(20) == 0, sipp.output()

    record = await call_record(redis, caller)
    assert record["dialed"] == "12345"
    assert record["keys"] == ["2"]
    assert record["variables"]["request_type"] == "complaint"
    assert record["route"] == {"type": "queue", "queue": "general", "priority": 0, "one_key": False}
    assert record["hung_up"] is False
    assert [v["node"] for v in record["visits"]][:2] == ["caller", "greeting"]  # no open case: the greeting


async def test_given_a_caller_hangs_up_mid_menu_then_a_call_record_is_kept(
    engine, phones: Phones, ami: AmiClient, redis
) -> None:
    caller = phones.next_caller()
    hung_up = ami.wait_for("Hangup", lambda e: e.get("CallerIDNum") == caller)

    sipp, _ = await phones.call("12345", [], hold_ms=2500, caller=caller)

    await asyncio.wait_for(hung_up, 20)
    assert await sipp.wait(20) == 0, sipp.output()
    record = await call_record(redis, caller)
    assert record["hung_up"] is True
    assert record["route"]["type"] == "hangup"
    assert record["visits"], "the record shows where the caller was when they hung up"
