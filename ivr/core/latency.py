"""How quickly the engine answers, measured by itself: the event loop's lag and the round
trip of AGI commands that do not wait for the caller.

A call is held by the engine only while it waits on its event loop, so these two numbers are
what load costs a caller: a loop that wakes late delays every call's next command, and a slow
AGI round trip delays the route. Both are cumulative histograms with fixed buckets (one
``bisect`` per sample), published with the engine's status in Redis (field ``latency``);
the difference of two snapshots gives percentiles over a window (``benchmarks/bench_load.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
from typing import Any, Callable, Mapping

# Upper bounds of the buckets, in seconds: 10 µs to about 60 s in 10 % steps, so a percentile
# read from them is at most 10 % above the sample it stands for.
BOUNDS: tuple[float, ...] = tuple(1e-5 * 1.1 ** i for i in range(165))

# Commands whose reply waits for the caller (a prompt played, a key awaited): their time is the
# call's, not the engine's or Asterisk's.
CALLER_PACED = (
    "STREAM FILE", "CONTROL STREAM FILE", "GET DATA", "GET OPTION", "WAIT FOR DIGIT", "SAY ", "RECORD FILE",
    "SPEECH ", "RECEIVE ", "EXEC Playback", "EXEC Background", "EXEC Read", "EXEC Wait", "EXEC Dial", "EXEC Queue",
)


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)  # the last bucket: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BOUNDS, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> dict[str, Any]:
        """Non-empty buckets by index, count and sum: small enough to publish every few seconds."""
        return {"buckets": {str(i): c for i, c in enumerate(self.counts) if c}, "count": sum(self.counts),
                "sum": self.total}


def window(after: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> dict[int, int]:
    """Bucket counts between two snapshots (``before`` None: since the engine started)."""
    old = {int(i): c for i, c in (before or {}).get("buckets", {}).items()}
    counts = {int(i): c - old.get(int(i), 0) for i, c in after.get("buckets", {}).items()}
    return {i: c for i, c in counts.items() if c > 0}


def percentile(counts: Mapping[int, int], q: float) -> float:
    """The upper bound of the bucket holding the ``q`` quantile (nearest rank); nan if empty."""
    total = sum(counts.values())
    if not total:
        return math.nan
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i in sorted(counts):
        seen += counts[i]
        if seen >= rank:
            return BOUNDS[i] if i < len(BOUNDS) else math.inf
    return math.inf


class EngineLatency:
    """The engine's two histograms; ``agi_reply`` is the AGI channel's round-trip hook."""

    def __init__(self) -> None:
        self.loop_lag = Histogram()
        self.agi_roundtrip = Histogram()

    def agi_reply(self, command: str, seconds: float) -> None:
        if not command.startswith(CALLER_PACED):
            self.agi_roundtrip.observe(seconds)

    async def sample_loop_lag(self, interval: float = 0.25, idle_interval: float | None = None,
                              busy: Callable[[], bool] = lambda: True) -> None:
        """Sleep ``interval`` again and again; how much later than asked the loop woke is its lag.

        Four samples a second (14,400 an hour) are plenty for a p99, and each engine of a node
        wakes for them while it has calls: with two engines, twice (issue 19's CPU target).

        While ``busy()`` is false (no call in progress) it sleeps ``idle_interval`` instead: on
        these machines every wake-up of an idle process costs about 0.2 ms of CPU, and an engine
        standing by (or a quiet night) would pay ten a second for samples no caller waits on."""
        loop = asyncio.get_running_loop()
        while True:
            step = interval if idle_interval is None or busy() else idle_interval
            asked = loop.time() + step
            await asyncio.sleep(step)
            self.loop_lag.observe(max(0.0, loop.time() - asked))

    def to_json(self) -> str:
        return json.dumps({"loop_lag": self.loop_lag.snapshot(), "agi_roundtrip": self.agi_roundtrip.snapshot()},
                          separators=(",", ":"))
