"""The load benchmark (benchmarks/bench_load.py) at tiny size, on its own bed without DNS: every
caller reaches a seat, the engine keeps a record of each, and the numbers it prints are there.
Nothing here is timed."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_load as bench  # noqa: E402


@pytest.mark.timeout(120)
def test_given_a_tiny_load_then_every_caller_reaches_a_seat_and_every_number_is_measured() -> None:
    args = bench.parse_args(["--callers", "4", "--agents", "4", "--rate", "10", "--talk-ms", "500",
                             "--hold-ms", "6000", "--idle", "0.2", "--rtp-ports", "40"])
    result = bench.run(args)
    assert result["failed"] == 0 and result["reached_seat"] == result["seat_hung_up"] == 4, result
    assert result["ivr_records"] == {"queue general": 4}
    assert result["sipp_failed"] == 0 and result["seat_calls"] == 4
    assert result["dns_queries"] == [] and result["channels_left"] == 0
    assert result["cpu_s"]["asterisk"] > 0 and result["cpu_s"]["engine"] > 0
    assert result["agi_roundtrips"] >= 4 and not math.isnan(result["agi_p99_ms"])
    assert result["loop_lag_samples"] > 0
    assert "failed calls (no seat reached)" in bench.table(result)
