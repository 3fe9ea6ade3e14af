"""The engine's own latency histograms: percentiles from buckets, windows between two published
snapshots, only commands that do not wait for the caller, and a blocked loop seen as lag."""

from __future__ import annotations

import asyncio
import json
import math
import time

from ivr.core.latency import BOUNDS, EngineLatency, Histogram, percentile, window
from testbed.calls import until


def test_given_samples_then_a_percentile_is_the_bound_of_their_bucket_at_most_10_percent_above() -> None:
    h = Histogram()
    for ms in range(1, 101):
        h.observe(ms / 1000)
    counts = window(h.snapshot())
    for q, sample in ((0.5, 0.050), (0.99, 0.099), (1.0, 0.100)):
        assert sample <= percentile(counts, q) <= sample * 1.1
    assert math.isnan(percentile({}, 0.5))
    h.observe(1e6)
    assert percentile(window(h.snapshot()), 1.0) == math.inf and len(h.counts) == len(BOUNDS) + 1


def test_given_two_snapshots_then_the_window_holds_only_what_came_between() -> None:
    h = Histogram()
    h.observe(0.001)
    before = json.loads(json.dumps(h.snapshot()))  # as read back from Redis
    h.observe(0.2)
    h.observe(0.2)
    counts = window(h.snapshot(), before)
    assert sum(counts.values()) == 2 and 0.2 <= percentile(counts, 0.5) <= 0.22


def test_given_agi_replies_then_only_commands_not_paced_by_the_caller_count() -> None:
    latency = EngineLatency()
    latency.agi_reply('STREAM FILE "ivr12345/welcome_12345" ""', 4.9)
    latency.agi_reply('GET DATA "ivr12345/main_menu" 3000 1', 2.0)
    latency.agi_reply("EXEC MSet IVR_QUEUE=general,IVR_ROUTE=queue", 0.0004)
    latency.agi_reply('GET VARIABLE "IVR_DIALED"', 0.0003)
    assert latency.agi_roundtrip.snapshot()["count"] == 2
    assert json.loads(latency.to_json())["agi_roundtrip"]["sum"] < 0.001


async def test_given_a_blocked_loop_then_the_sampler_records_the_lag() -> None:
    latency = EngineLatency()
    sampler = asyncio.create_task(latency.sample_loop_lag(interval=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # the loop is frozen: the sampler wakes at least 0.29 s late
    await asyncio.sleep(0.05)
    sampler.cancel()
    assert percentile(window(latency.loop_lag.snapshot()), 1.0) >= 0.29


async def test_given_no_call_in_progress_then_the_sampler_sleeps_the_idle_interval_and_samples_fast_again_when_busy() -> None:
    latency, calls = EngineLatency(), [1]

    def samples() -> int:
        return int(latency.loop_lag.snapshot()["count"])

    sampler = asyncio.create_task(latency.sample_loop_lag(interval=0.005, idle_interval=1.0, busy=lambda: calls[0] > 0))
    try:
        await until(lambda: samples() >= 5, timeout=5, interval=0.01)  # busy: a sample every 5 ms
        at_idle, calls[0] = samples(), 0
        await until(lambda: samples() > at_idle, timeout=5, interval=0.001)  # the short sleep in progress ends
        idle_from = samples()
        await asyncio.sleep(0.3)  # 60 busy intervals; idle: the sampler sleeps 1 s
        assert samples() == idle_from
        calls[0] = 2
        await until(lambda: samples() >= idle_from + 5, timeout=5, interval=0.01)  # after that one idle sleep
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
