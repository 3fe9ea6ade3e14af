"""A node's trunks followed into Redis (transfer/trunk_watch.py), in a real redis-server: the
device states read after an AMI login, then the OPTIONS probes' ContactStatus events; only the
qualified trunks, only what a status says (not "Created" or a not-yet-probed UNKNOWN)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis

from ivr.store import keyspace
from testbed.calls import until
from transfer.trunk_watch import TrunkWatch, trunk_rows

TRUNKS = ["tax", "customs", "tobacco", "emergency"]


class Listing:
    """What DeviceStateList answers (the AMI client's list of events)."""

    def __init__(self, states: dict[str, str]):
        self.states = states

    async def action(self, action: dict[str, str], **_kw: Any) -> list[dict[str, str]]:
        assert action == {"Action": "DeviceStateList"}
        return [{"Event": "DeviceStateChange", "Device": d, "State": s} for d, s in self.states.items()]


@pytest.fixture
async def watch(redis_url: str) -> AsyncIterator[TrunkWatch]:
    w = TrunkWatch(redis_url, "127.0.0.1:5038", lambda: TRUNKS)
    task = asyncio.create_task(w.run())
    yield w
    task.cancel()
    await w.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def states(redis: aioredis.Redis) -> dict[str, bool]:
    return {r["trunk"]: r["up"] for r in trunk_rows(await redis.hgetall(keyspace.TRUNKS))}


async def test_after_a_login_the_trunks_device_states_then_each_probe_result_land_in_redis(
    watch: TrunkWatch, redis: aioredis.Redis,
) -> None:
    watch.on_login(Listing({"PJSIP/tax": "UNAVAILABLE", "PJSIP/customs": "NOT_INUSE", "PJSIP/tobacco": "UNKNOWN",
                            "PJSIP/agent1001": "UNAVAILABLE", "Queue:q-general_avail": "NOT_INUSE"}))  # type: ignore[arg-type]
    assert await until(lambda: states(redis), 5) == {"tax": False, "customs": True}

    watch.on_event({"Event": "ContactStatus", "AOR": "tax", "ContactStatus": "Reachable"})
    watch.on_event({"Event": "ContactStatus", "AOR": "customs", "ContactStatus": "Unreachable"})
    watch.on_event({"Event": "ContactStatus", "AOR": "agent1001", "ContactStatus": "Unreachable"})  # not a trunk
    watch.on_event({"Event": "ContactStatus", "AOR": "emergency", "ContactStatus": "Created"})  # says nothing yet
    assert await until(lambda: _when(states(redis), lambda s: s.get("tax")), 5) == {"tax": True, "customs": False}
    [row] = [json.loads(v) for k, v in (await redis.hgetall(keyspace.TRUNKS)).items() if k == "127.0.0.1:5038|tax"]
    assert row["asterisk"] == "127.0.0.1:5038" and row["up"] is True


async def _when(value: Any, check: Any) -> Any:
    got = await value
    return got if check(got) else None


def test_a_stored_state_that_is_not_a_trunks_row_is_skipped() -> None:
    good = json.dumps({"trunk": "tax", "asterisk": "n1", "up": False, "at": 1.5})
    assert trunk_rows({"a": "not json", "b": json.dumps({"trunk": "x"}), "c": good}) == [
        {"trunk": "tax", "asterisk": "n1", "up": False, "at": 1.5}]
