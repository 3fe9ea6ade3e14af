"""`ivr cluster status`: proxies (up or down, each one's view of every node), nodes (calls in
progress, cap, reachable), engines and leases, as a table for people or ``--json`` for scripts.
Exit 1 when a proxy is down, a node unreachable or Redis away (a script's alarm), else 0."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from ivr.asterisk_conf.kamctl import RUN_DIR
from ivr.cli import config_dir
from ivr.config import load_config

if TYPE_CHECKING:
    from ivr.cluster_status import ClusterStatus, LeaseView

HELP = "the cluster now: proxies and their view of the nodes, nodes' calls, engines, leases"


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = sub.add_parser("status", help=HELP)
    st.add_argument("--json", action="store_true", help="one JSON object for scripts")
    st.add_argument("--kamailio-run", default=RUN_DIR, metavar="DIR",
                    help=f"where the proxies' control sockets are (default: {RUN_DIR})")


def run(args: argparse.Namespace) -> int:
    from ivr.cluster_status import gather
    from ivr.store.client import redis_client

    s = load_config(config_dir(args)).settings

    async def main() -> int:
        redis = redis_client(s.redis, 2, 2.0, name="cluster-status")
        try:
            status = await gather(s, redis, args.kamailio_run)
        finally:
            await redis.aclose()
        if args.json:
            print(json.dumps(status.as_json(), ensure_ascii=False, indent=2))
        else:
            print("\n".join(status_text(status)))
        troubled = status.redis_error or any(not p.up for p in status.proxies) or any(not n.reachable for n in status.nodes)
        return 1 if troubled else 0

    return asyncio.run(main())


def status_text(status: "ClusterStatus") -> list[str]:
    from ivr.commands.reload import engine_table

    out: list[str] = []
    names = [n.name for n in status.nodes]
    if status.proxies:
        rows = [("PROXY", "SIP", "STATE", *names)]
        for p in status.proxies:
            rows.append((p.name, p.sip, "up" if p.up else "DOWN", *(p.nodes.get(n, "-") for n in names)))
        out += _table(rows)
        out += [f"  {p.name}: {p.why}" for p in status.proxies if not p.up]
        strays = sorted({d for p in status.proxies for d in p.nodes if d not in names})
        out += [f"  a proxy lists {d}, which is no node of the cluster section" for d in strays]
        out.append("")
    rows = [("NODE", "AMI", "REACHABLE", "CALLS", "CAP", "FOLLOW", "HOURS", "RETENTION")]
    for n in status.nodes:
        leases = [_lease(n.leases.get(d)) for d in ("follow", "hours", "retention")]
        rows.append((n.name, n.ami, "yes" if n.reachable else "NO", "-" if n.calls is None else str(n.calls),
                     "-" if n.maxcalls is None else str(n.maxcalls), *leases))
    out += _table(rows)
    out += [f"  {n.name}: {n.why}" for n in status.nodes if not n.reachable]
    out.append("")
    if status.redis_error:
        out.append(f"Redis did not answer ({status.redis_error}): no engines or leases shown")
        return out
    out += engine_table(status.engines) if status.engines else ["no engine is live (no heartbeat within 15 s)"]
    out.append(f"nodes lease (closes a dead node's calls): {_lease(status.nodes_lease)}")
    return out


def _lease(lease: "LeaseView | None") -> str:
    if lease is None or not lease.holder:
        return "free"
    return f"{lease.holder} #{lease.token}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
