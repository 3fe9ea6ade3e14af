"""Scaling out (issue 20, README.md section 9): one run offers the same load above one node's call
cap to a one-node cluster and to a two-node cluster, and prints side by side:

1. calls admitted (answered by a node) with 1 node and with 2 nodes, and their ratio (target
   ≥ 1.9×); the rest are refused: every node answered 503 (``maxcalls``), the proxy tried each one
   in the same INVITE (``failure_route``, ``ds_next_dst``) and the carrier got the last node's 503
   as a 500 (a proxy does not pass a 503 on, RFC 3261 16.7);
2. the proxies' CPU per call (both Kamailio proxies, every process of each);
3. CPU per admitted call, two nodes ÷ one node (target ≤ 1.1×): every Asterisk and every engine,
   then the same with the proxies added.

Each cluster is a real cluster bed (testbed/cluster.py): N Asterisk nodes rendered with
``--node``, one engine each by default, one Redis, two Kamailio proxies running the generated
config, the carrier played by sipp from its one address (primary proxy, then secondary). The one-node
cluster is the same thing with one node behind the same two proxies and the same ``maxcalls``.
A wave is ``--calls`` citizens at ``--rate`` per second, each held ``--hold-ms`` (the typical call
of the 12345 line: the whole greeting, then the main menu prompt, no key), so all are up at
once; every call ends at the carrier's BYE. The beds run one after the other (never both at once on
two cores); each gets a few unmeasured warm-up calls, then ``--waves`` measured waves, then
``--cap-waves`` waves of exactly its cap (1 × or 2 × ``--cap`` calls: every node full, nothing
refused), whose CPU per call is printed for information: above the cap the one-node cluster also
pays for 1.5 refusals per admitted call, the two-node cluster for fewer. CPU is
sampled (/proc, benchmarks/procstat.py) before a wave's first INVITE and after its last call is
gone from every node; the idle CPU of each group (no call) is measured after the warm-up and the
ratio net of it is printed for information.

    .venv/bin/python benchmarks/bench_nodes.py                       # about 3 minutes
    .venv/bin/python benchmarks/bench_nodes.py --calls 5 --cap 2 --waves 1 --warmup 1   # a smoke run

Nothing here asserts; the exit status is 0 whether or not a target is met: read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]  # REPO: the test bed package lives there, not in the install

from procstat import Meters  # noqa: E402

from ivr.ami.client import AmiClient  # noqa: E402
from testbed.calls import until  # noqa: E402
from testbed.cluster import ClusterBed  # noqa: E402
from testbed.cluster_calls import Carrier, current_calls  # noqa: E402
from testbed.sipp.carrier import ADMITTED, REFUSED, outcome_count  # noqa: E402

TARGET_ADMITTED = 1.9
TARGET_CPU = 1.1
NODE_GROUPS = ("asterisk", "engine")  # what "CPU per call" counts; proxies and redis are printed apart


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def meters(cluster: ClusterBed) -> Meters:
    """Every process group a call can cost, labelled ``kind:name``: each node's Asterisk and
    engines, each proxy (Kamailio and its children), the one Redis."""
    st = cluster.state
    assert st
    groups: dict[str, int] = {}
    for node, bed in zip(st.node_names, cluster.nodes):
        assert bed.state
        groups[f"asterisk:{node}"] = bed.state.asterisk_pid
        groups.update({f"engine:{node}-{i}": bed.engine_pid(i) for i in range(cluster.engines)})
    groups.update({f"proxy:{name}": pid for name, pid in zip(st.proxy_names, st.proxy_pids)})
    redis = cluster.nodes[0].state
    assert redis
    groups.update({f"redis:{i}": pid for i, pid in enumerate(redis.redis_pids or [redis.redis_pid])})
    return Meters(groups)


def by_kind(cpu: dict[str, float]) -> dict[str, float]:
    """Seconds of CPU per kind (asterisk, engine, proxy, redis), summed over its groups."""
    out: dict[str, float] = {}
    for label, seconds in cpu.items():
        kind = label.split(":", 1)[0]
        out[kind] = out.get(kind, 0.0) + seconds
    return out


class Answers:
    """Which node answered which carrier call: a Newstate ``Up`` of a caller's channel on a node's
    AMI (read-all ``testbed`` user, call events only)."""

    def __init__(self, cluster: ClusterBed):
        st = cluster.state
        assert st
        self.amis: list[AmiClient] = []
        self.callers: set[str] = set()
        self.up: dict[str, set[str]] = {node: set() for node in st.node_names}
        for node, bed in zip(st.node_names, cluster.nodes):
            assert bed.state
            ami = AmiClient("127.0.0.1", bed.state.ami_port, "testbed", bed.state.testbed_ami_secret, events="call")
            ami.on("Newstate", lambda e, node=node: self._seen(node, e))  # type: ignore[misc]
            self.amis.append(ami)

    def _seen(self, node: str, event: Any) -> None:
        if event.get("ChannelStateDesc") == "Up" and event.get("CallerIDNum") in self.callers:
            self.up[node].add(event["CallerIDNum"])

    async def connect(self) -> None:
        for ami in self.amis:
            await ami.connect()

    def close(self) -> None:
        for ami in self.amis:
            ami.close()

    async def all_gone(self) -> bool:
        """No call left on any node (the carrier's BYEs have been handled everywhere)."""
        return all([await current_calls(ami) == 0 for ami in self.amis])


def moved_on(cluster: ClusterBed) -> int:
    """INVITEs a proxy has moved to the next node after a node's 503, so far (its log)."""
    assert cluster.state
    logs = (cluster.proxy_log(i) for i in range(len(cluster.state.proxy_names)))
    return sum(p.read_text(errors="replace").count("node failed (503)") for p in logs if p.exists())


async def wave(cluster: ClusterBed, carrier: Carrier, answers: Answers, args: argparse.Namespace,
               calls: int) -> dict[str, Any]:
    """``calls`` carrier calls at once; the CPU of every group from before the first INVITE until
    every node holds no call again."""
    m = meters(cluster)
    moved_before = moved_on(cluster)
    before, t0 = m.sample(), time.monotonic()
    sipp, callers = await carrier.calls(calls, hold_ms=args.hold_ms, rate=args.rate, outcomes=True)
    answers.callers |= set(callers)
    code = await sipp.wait(args.hold_ms / 1000 + 150)
    await until(answers.all_gone, timeout=60)
    cpu, wall = Meters.delta(before, m.sample()), time.monotonic() - t0
    stats = sipp.statistics()
    refused = outcome_count(sipp, REFUSED)
    return {"offered": calls, "admitted": outcome_count(sipp, ADMITTED), "refused": refused,
            # each refused call's last 503 plus every 503 after which the proxy tried the next node
            "node_503s": refused + moved_on(cluster) - moved_before,
            "answered": {node: len(up & set(callers)) for node, up in answers.up.items()},
            "sipp_exit": code, "sipp_failed": stats.get("FailedCall", 0), "cpu_s": cpu, "wall_s": wall,
            "sipp_output": "" if code == 0 else sipp.output()[-2000:]}


async def measure(cluster: ClusterBed, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    answers, carrier = Answers(cluster), Carrier(cluster, workdir)
    await answers.connect()
    try:
        if args.warmup:
            log(f"  warm-up: {args.warmup} calls (not measured)")
            await wave(cluster, carrier, answers, args, args.warmup)
        m = meters(cluster)
        before, t0 = m.sample(), time.monotonic()
        await asyncio.sleep(args.idle)  # no call at all: timers, probes, heartbeats
        idle = {k: v / (time.monotonic() - t0) for k, v in Meters.delta(before, m.sample()).items()}
        over = [await logged(await wave(cluster, carrier, answers, args, args.calls), "wave", n, args.waves)
                for n in range(args.waves)]
        at_cap = len(cluster.nodes) * args.cap  # every node full, nothing refused: the call's own cost
        cap = [await logged(await wave(cluster, carrier, answers, args, at_cap), "at the cap", n, args.cap_waves)
               for n in range(args.cap_waves)]
    finally:
        answers.close()
        await carrier.close()
    return {"nodes": len(cluster.nodes), **aggregate(over, idle), "at_cap": aggregate(cap, idle) if cap else None}


async def logged(w: dict[str, Any], what: str, n: int, of: int) -> dict[str, Any]:
    log(f"  {what} {n + 1}/{of}: {w['admitted']} admitted, {w['refused']} refused of {w['offered']}, "
        f"per node {w['answered']}, {w['node_503s']} 503s from nodes, sipp exit {w['sipp_exit']}, "
        f"load {os.getloadavg()[0]:.2f}")
    return w


def aggregate(waves: list[dict[str, Any]], idle: dict[str, float]) -> dict[str, Any]:
    """Several waves as one: calls and CPU summed; ``idle``: each group's CPU per second with no call."""
    total_cpu: Counter[str] = Counter()
    for w in waves:
        total_cpu.update(w["cpu_s"])
    return {"waves": waves, "idle_cpu_per_s": idle, "cpu_s": dict(total_cpu),
            "wall_s": sum(w["wall_s"] for w in waves), "offered": sum(w["offered"] for w in waves),
            "admitted": sum(w["admitted"] for w in waves), "refused": sum(w["refused"] for w in waves),
            "node_503s": sum(w["node_503s"] for w in waves),
            "answered": sum((Counter(w["answered"]) for w in waves), Counter()),
            "sipp_failed": sum(w["sipp_failed"] for w in waves)}


def per_call(r: dict[str, Any], kinds: tuple[str, ...], calls: str = "admitted", net: bool = False) -> float:
    """ms of CPU of ``kinds`` per call (``calls``: admitted or offered); ``net``: idle CPU taken out."""
    cpu = by_kind(r["cpu_s"])
    idle = by_kind(r["idle_cpu_per_s"])
    seconds = sum(cpu.get(k, 0.0) - (idle.get(k, 0.0) * r["wall_s"] if net else 0.0) for k in kinds)
    return 1000 * seconds / max(r[calls], 1)


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def table(one: dict[str, Any], two: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def row(measure: str, kinds: tuple[str, ...], target: str = "(info)", limit: float | None = None,
            calls: str = "admitted", net: bool = False) -> None:
        a, b = per_call(one, kinds, calls, net), per_call(two, kinds, calls, net)
        r = ratio(b, a)
        verdict = "" if limit is None else ("met" if r <= limit else "MISSED")
        rows.append((measure, f"{a:.2f} ms", f"{b:.2f} ms", f"{r:.2f}x", f"{target} {verdict}".strip()))

    admitted = ratio(two["admitted"], one["admitted"])
    rows.append(("calls admitted", f"{one['admitted']} of {one['offered']}", f"{two['admitted']} of {two['offered']}",
                 f"{admitted:.2f}x", f">= {TARGET_ADMITTED}x " + ("met" if admitted >= TARGET_ADMITTED else "MISSED")))
    rows.append(("calls refused (5xx: every node full)", str(one["refused"]), str(two["refused"]), "", ""))
    rows.append(("503s from nodes (maxcalls reached)", str(one["node_503s"]), str(two["node_503s"]), "", ""))
    rows.append(("admitted per node", _nodes(one["answered"]), _nodes(two["answered"]), "", ""))
    row("proxies' CPU per offered call", ("proxy",), calls="offered")
    row("proxies' CPU per admitted call", ("proxy",))
    row("CPU/admitted call: Asterisk + engines", NODE_GROUPS, f"<= {TARGET_CPU}x", TARGET_CPU)
    row("  same with the proxies", (*NODE_GROUPS, "proxy"))
    row("  same, net of idle CPU", NODE_GROUPS, net=True)
    if one["at_cap"] and two["at_cap"]:
        a, b = (per_call(r["at_cap"], NODE_GROUPS) for r in (one, two))
        rows.append((f"  same at the cap ({one['at_cap']['admitted']} vs {two['at_cap']['admitted']} calls, "
                     "none refused)", f"{a:.2f} ms", f"{b:.2f} ms", f"{ratio(b, a):.2f}x", "(info)"))
    for kind in ("asterisk", "engine", "proxy", "redis"):
        row(f"  {kind} per admitted call", (kind,))
    idle = [by_kind(r["idle_cpu_per_s"]) for r in (one, two)]
    for kind in sorted(idle[1]):
        rows.append((f"  {kind} idle CPU, ms/s", f"{1000 * idle[0].get(kind, 0.0):.2f}", f"{1000 * idle[1][kind]:.2f}",
                     "", ""))
    rows.append(("wall time of the waves", f"{one['wall_s']:.1f} s", f"{two['wall_s']:.1f} s", "", ""))
    width = max(len(r[0]) for r in rows)
    cols = [max(len(r[i]) for r in rows + [("", "1 node", "2 nodes", "ratio", "target")]) for i in range(5)]
    head = ("measure", "1 node", "2 nodes", "ratio", "target")
    lines = [f"{head[0]:<{width}}  {head[1]:>{cols[1]}}  {head[2]:>{cols[2]}}  {head[3]:>{cols[3]}}  {head[4]}"]
    lines.append("-" * (width + sum(cols[1:]) + 8))
    for r in rows:
        lines.append(f"{r[0]:<{width}}  {r[1]:>{cols[1]}}  {r[2]:>{cols[2]}}  {r[3]:>{cols[3]}}  {r[4]}")
    return "\n".join(lines)


def _nodes(answered: dict[str, int]) -> str:
    return " / ".join(f"{node} {n}" for node, n in sorted(answered.items()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each cluster bed in turn (started outside any event loop: it waits for Asterisk with its own)."""
    results: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    for nodes in (1, 2):
        cluster = ClusterBed(args.config, nodes=nodes, engines=args.engines, maxcalls=args.cap,
                             name=f"bench-nodes{nodes}-{os.getpid()}")
        log(f"starting a cluster bed of {nodes} node(s), maxcalls {args.cap} each, two proxies")
        with tempfile.TemporaryDirectory(prefix="bench-nodes-") as sipp_dir, \
                cluster.running(REPO / "build" / "bench-logs" / f"nodes{nodes}", progress=log):
            results[str(nodes)] = asyncio.run(measure(cluster, args, Path(sipp_dir)))
    results["load_after"] = os.getloadavg()[0]
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=50, help="calls offered per wave, all up at once (default 50)")
    p.add_argument("--cap", type=int, default=20, help="each node's maxcalls (default 20)")
    p.add_argument("--rate", type=float, default=20.0, help="new calls per second (default 20)")
    p.add_argument("--hold-ms", type=int, default=9000,
                   help="the carrier hangs up after this (default 9000: the greeting, 4.9 s, and the menu prompt)")
    p.add_argument("--waves", type=int, default=3, help="measured waves per cluster (default 3)")
    p.add_argument("--cap-waves", type=int, default=2,
                   help="then waves of exactly the cluster's cap, nothing refused (default 2; 0: none)")
    p.add_argument("--warmup", type=int, default=4, help="unmeasured calls first (default 4)")
    p.add_argument("--engines", type=int, default=1, help="engines per node (default 1)")
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle CPU measured first")
    p.add_argument("--config", default=str(REPO / "config"), help="config dir (default: the repo's)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    result = run(args)
    one, two = result["1"], result["2"]
    print(f"\nScaling out: {args.waves} wave(s) of {args.calls} calls at {args.rate:g}/s held {args.hold_ms / 1000:g} s, "
          f"each node's maxcalls {args.cap}, {args.engines} engine(s) per node; load average "
          f"{result['load_before']:.2f} -> {result['load_after']:.2f}, {time.monotonic() - started:.0f} s\n")
    print(table(one, two))
    for r in (one, two):
        for w in r["waves"] + (r["at_cap"]["waves"] if r["at_cap"] else []):
            if w["sipp_output"]:
                print(f"\n{r['nodes']} node(s): the carrier's sipp exited {w['sipp_exit']}:\n{w['sipp_output']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=list))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
