"""``ivr reload --asterisk DIR`` with a cluster section: every node rendered (as
``ivr asterisk-conf render --node NAME`` does) into its directory and reloaded over its own AMI,
then the proxies' dispatcher list (ivr/cluster_apply.py) and the seats' keys (ivr/cluster_seat_keys.py).
One line per node and proxy."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ivr.asterisk_conf import render
from ivr.commands.asterisk_conf import render_options
from ivr.config import Settings


def reload_cluster(s: Settings, args: argparse.Namespace) -> bool:
    """Render every node first (a refused value changes no node), then write and reload each;
    True when every node and proxy went through."""
    from ivr.cluster_apply import apply_nodes, apply_proxies, node_dir, report
    from ivr.cluster_seat_keys import apply_seat_keys, keys_report

    assert s.cluster is not None
    rendered = {node: render(s, render_options(s, node=node, kamailio_dir=args.kamailio_dir,
                                               kamailio_run_dir=args.kamailio_run))
                for node in s.cluster.nodes}
    dirs = {node: node_dir(args.asterisk, node) for node in rendered}
    dispatcher = next(iter(rendered.values())).get("dispatcher.list", "")

    async def main() -> tuple[list[str], bool]:
        nodes = await apply_nodes(s, rendered, dirs)
        proxies = await apply_proxies(s, dispatcher, Path(args.kamailio_dir), args.kamailio_run) if dispatcher else []
        lines, ok = report(nodes, proxies)
        keys, keys_ok = keys_report(await apply_seat_keys(s, Path(args.kamailio_dir), args.kamailio_run))
        return lines + keys, ok and keys_ok

    lines, ok = asyncio.run(main())
    for line in lines:
        print(line)
    return ok
