"""The web-phone benchmark's own parts (benchmarks/bench_web_phone.py), no bed: the deployment it
makes is a valid config with one SIP and one web seat in the general queue and no survey, and its
table says met or MISSED from the numbers, never from a constant. Nothing here is timed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_web_phone as bench  # noqa: E402

from ivr.config import load_config  # noqa: E402
from queues.model import serving  # noqa: E402


def test_the_bench_config_has_a_sip_and_a_web_seat_in_the_general_queue_and_no_survey(tmp_path: Path) -> None:
    config = bench.web_config(tmp_path)
    bench.make_web_seat(config, 18088)
    s = load_config(config).settings
    assert sorted(serving("general", s.agents, s.queues)) == sorted(bench.SEATS.values())
    assert s.agents[bench.SEATS["web"]].phone == "web" and s.agents[bench.SEATS["sip"]].phone == "sip"
    assert s.phones.web is not None and s.phones.web.listen == "127.0.0.1:18088"
    assert s.tickets.satisfaction is False


def tally(asterisk_s: float, calls: int = 4) -> bench.Tally:
    return bench.Tally(cpu_s={"asterisk": asterisk_s, "engine": 0.1, "redis": 0.01, "chromium": 0.0},
                       per_batch=[{"asterisk": 1000 * asterisk_s / calls}], wall_s=40.0, calls=calls)


def test_the_table_gives_the_ratio_of_asterisk_cpu_per_call_and_its_verdict() -> None:
    args = bench.parse_args(["--quick"])
    idle = {"asterisk": 1.0, "engine": 0.5, "redis": 0.1, "chromium": 0.0}
    met = row(bench.table(args, {"sip": tally(0.4), "web": tally(0.48)}, idle), "Asterisk CPU per call (ms)")
    assert met[:3] == ["100.0", "120.0", "1.20×"] and met[-1] == "met)"
    missed = row(bench.table(args, {"sip": tally(0.4), "web": tally(0.6)}, idle), "Asterisk CPU per call (ms)")
    assert missed[:3] == ["100.0", "150.0", "1.50×"] and missed[-1] == "MISSED)"
    net = row(bench.table(args, {"sip": tally(0.4), "web": tally(0.6)}, idle), "net of idle (info)")
    assert net == ["90.0", "140.0", "1.56×"]  # 1 ms/s of idle over 40 s: 10 ms per call off each


def row(text: str, label: str) -> list[str]:
    """The numbers (and verdict) of the table's row called ``label``."""
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
    return line.strip()[len(label):].split()


def test_descendants_are_the_whole_tree_below_a_process(tmp_path: Path) -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True)
    try:
        for _ in range(200):
            if len(bench.descendants(parent.pid)) == 2:
                break
            os.sched_yield()
            subprocess.run(["sleep", "0.01"])
        assert len(bench.descendants(parent.pid)) == 2 and parent.pid not in bench.descendants(parent.pid)
    finally:
        os.killpg(parent.pid, 9)
        parent.wait()
