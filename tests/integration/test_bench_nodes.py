"""The scaling-out benchmark (benchmarks/bench_nodes.py) at tiny size: a one-node and a two-node
cluster bed (real Asterisk nodes, engines, two real Kamailio proxies, the carrier's sipp) offered
more calls than both nodes' caps; each node takes exactly its cap, the rest are refused by the
proxy after every node said 503 (and the proxy's call-load count forgets each refused call: no
admitted call meets a full node later), exactly the cap is admitted whole, and every CPU group the
table divides is measured. Nothing here is timed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_nodes as bench  # noqa: E402

CALLS, CAP = 5, 2


@pytest.mark.timeout(300)
def test_given_more_calls_than_two_caps_then_each_node_takes_its_cap_and_the_proxy_refuses_the_rest() -> None:
    args = bench.parse_args(["--calls", str(CALLS), "--cap", str(CAP), "--waves", "2", "--warmup", "1",
                             "--hold-ms", "6000", "--idle", "0.5", "--cap-waves", "1"])
    result = bench.run(args)
    one, two = result["1"], result["2"]
    assert (one["admitted"], one["refused"]) == (2 * CAP, 2 * (CALLS - CAP)), one["waves"]
    assert (two["admitted"], two["refused"]) == (4 * CAP, 2 * (CALLS - 2 * CAP)), two["waves"]
    assert dict(one["answered"]) == {"ast-a": 2 * CAP} and dict(two["answered"]) == {"ast-a": 2 * CAP, "ast-b": 2 * CAP}
    assert one["sipp_failed"] == two["sipp_failed"] == 0
    for nodes, r in ((1, one), (2, two)):  # exactly the cap offered: every call admitted
        assert (r["at_cap"]["admitted"], r["at_cap"]["refused"]) == (nodes * CAP, 0), r["at_cap"]["waves"]
    assert [w["node_503s"] for w in one["waves"]] == [CALLS - CAP] * 2  # the node said 503 to each refused call
    # both nodes said 503 to the refused call, and only to it, in the second wave too: the proxy's
    # call count did not keep the refused call of the first (it then sent calls to a full node first)
    assert [w["node_503s"] for w in two["waves"]] == [2 * (CALLS - 2 * CAP)] * 2
    assert two["at_cap"]["node_503s"] == 0
    for r in (one, two):
        assert all(bench.by_kind(r["cpu_s"])[kind] > 0 for kind in ("asterisk", "engine", "proxy", "redis"))
        assert sum(1 for label in r["cpu_s"] if label.startswith("proxy:")) == 2  # both proxies, each its own group
    assert sum(1 for label in two["cpu_s"] if label.startswith("asterisk:")) == 2
    printed = bench.table(one, two)
    assert "calls admitted" in printed and "2.00x" in printed  # 4 of 5 vs 2 of 5
    assert "CPU/admitted call: Asterisk + engines" in printed and "proxies' CPU per offered call" in printed
