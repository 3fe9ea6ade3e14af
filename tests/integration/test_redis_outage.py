"""A dead Redis never drops a call or its record: calls are still routed, records are
spooled to disk by the engine and replayed, in order, once Redis is back."""

from __future__ import annotations

import asyncio

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import Phones, call_record, streamed_callers, until
from testbed.sipp import keys


async def test_given_redis_is_down_then_calls_are_routed_and_their_records_arrive_when_it_returns(
    bed: TestBed, engine: TestBed, phones: Phones, ami: AmiClient, redis
) -> None:
    bed.stop_redis()
    try:
        callers = []
        for key in ("1", "3"):
            caller = phones.next_caller()
            joined = ami.wait_for("QueueCallerJoin", lambda e, c=caller: e.get("CallerIDNum") == c)
            sipp, _ = await phones.call("12345", keys(key), hold_ms=2000, caller=caller)
            assert (await asyncio.wait_for(joined, 30))["Queue"] == "q-general"
            assert await sipp.wait(30) == 0, sipp.output()
            callers.append(caller)
        spool = bed.dir / "state" / "spool"
        assert any(p.read_text().count("\n") >= 2 for p in spool.glob("calls-*.jsonl"))
    finally:
        bed.start_redis()

    first, second = [await call_record(redis, c, timeout=30) for c in callers]
    assert (first["keys"], second["keys"]) == (["1"], ["3"])
    stream = await streamed_callers(redis)
    assert stream.index(callers[0]) < stream.index(callers[1])  # replayed in call order
    spool = bed.dir / "state" / "spool"
    await until(lambda: not any(spool.glob("calls-*")), timeout=10)  # journal retired
