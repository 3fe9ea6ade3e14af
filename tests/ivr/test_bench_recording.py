"""bench_recording's plumbing: the ABBA order of its phases and how a kind's phases add up."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_recording import merged, sequence


def test_phases_go_in_abba_order_so_a_drifting_load_weighs_on_every_kind_alike() -> None:
    assert sequence(["plain", "ivr", "mixmonitor"], 2) == ["plain", "ivr", "mixmonitor", "mixmonitor", "ivr", "plain"]
    assert sequence(["plain", "ivr"], 3) == ["plain", "ivr", "ivr", "plain", "plain", "ivr"]
    assert sequence(["plain", "ivr"], 1) == ["plain", "ivr"]


def test_a_kinds_phases_are_summed() -> None:
    one = {"cpu_s": {"asterisk": 1.0, "engine": 0.5}, "threads": {"pbx": 0.25}, "bridges": {"simple_bridge": 3},
           "wall_s": (10.0, 12.0), "listing": "first", "ok": 20, "failed": 0}
    two = {"cpu_s": {"asterisk": 3.0, "engine": 0.5}, "threads": {"pbx": 0.25, "mix": 1.0}, "bridges": {"simple_bridge": 1},
           "wall_s": (11.0, 11.5), "listing": "second", "ok": 19, "failed": 1}
    assert merged([one, two]) == {
        "cpu_s": {"asterisk": 4.0, "engine": 1.0}, "threads": {"pbx": 0.5, "mix": 1.0}, "bridges": {"simple_bridge": 4},
        "wall_s": (21.0, 23.5), "listing": "second", "ok": 39, "failed": 1}
