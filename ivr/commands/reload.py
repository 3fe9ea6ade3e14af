"""`ivr reload`: make the running engine recompile config/ (same as SIGHUP) and report.

Only a fully valid config goes live; calls in progress finish on the version they started
with. The engine that reloads announces its version through Redis and every other engine of
the cluster follows (ivr/cluster_reload.py); this command waits until each live engine has
confirmed, then lists them: identity, version, last reload, heartbeat, leases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ivr.cli import UsageError, config_dir
from ivr.config import load_config
from ivr.core.identity import engine_identity

if TYPE_CHECKING:
    from ivr.store.engines import EngineRegistry

HELP = "recompile config/ in the running engines (only a fully valid set goes live)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="store_true",
                   help="only show each engine's live version, last reload, heartbeat and leases; do not reload")
    p.add_argument("--asterisk", type=Path, metavar="DIR", default=None,
                   help="first render Asterisk's configuration into DIR (e.g. /etc/asterisk) and reload it: "
                        "agents, queues, trunks (see `ivr asterisk-conf apply`); with a cluster section every "
                        "node's files go to DIR/NODE (or DIR with {node} replaced) and every node is reloaded")
    p.add_argument("--kamailio-dir", default="/etc/kamailio",
                   help="with a cluster: where the proxies read dispatcher.list (default: /etc/kamailio)")
    p.add_argument("--kamailio-run", default="/run/kamailio", metavar="DIR",
                   help="with a cluster: the proxies' control sockets (default: /run/kamailio)")
    p.add_argument("--timeout", type=float, default=15.0)


def run(args: argparse.Namespace) -> int:
    from ivr.service import engine_pidfile
    from ivr.store import CallStore
    from ivr.store.engines import EngineRegistry

    loaded = load_config(config_dir(args))
    s = loaded.settings
    nodes_failed = False  # a cluster node or proxy that did not take the new files: exit 1 at the end
    if args.asterisk is not None and not args.status:
        from ivr.commands.asterisk_conf import apply, render_to
        from ivr.hot_reload import catalog_loader, compile_config, default_prompts_dir

        # the whole config must be valid before Asterisk sees any of it (raises with file:line)
        compile_config(loaded.config_dir, catalog_loader(default_prompts_dir(loaded.config_dir))())
        if s.cluster is not None:
            from ivr.commands.reload_nodes import reload_cluster

            nodes_failed = not reload_cluster(s, args)
        else:
            asterisks_own(args.asterisk)
            render_to(s, args.asterisk)
            asyncio.run(apply(s))
            print(f"Asterisk reloaded from {args.asterisk}: endpoints, queues, dialplan")
    found = local_engine(engine_pidfile(s.agi.port))
    if found is None and not args.status:
        raise UsageError(f"no `ivr serve` running on this host (no live pid file in {engine_pidfile(s.agi.port).parent}); "
                         "`ivr reload --status` lists the engines of the cluster")
    port, pid = found or (s.agi.port, None)
    local = engine_identity(port, pid=pid) if pid is not None else None

    async def main() -> int:
        from ivr.config import state_dir

        store = CallStore(s.redis, state_dir() / "spool", name="reload")  # reads status only
        try:
            registry = EngineRegistry(store.redis)
            status = await registry.status(local) if local else {}
            if not args.status:
                assert local is not None and pid is not None
                status = await signal_and_wait(registry, local, pid, status, args.timeout)
                if status.get("last_reload") == "refused":
                    print(f"reload refused; version {status['version']} stays live:")
                    print(status.get("errors", ""))
                    return 1
                await confirmed(registry, int(status.get("seq") or 0), args.timeout)
            if status:
                print(f"engine {local} (pid {status.get('pid')}): version {status.get('version')} is live"
                      + ("" if args.status else " (reloaded)"))
            return await report(registry)
        finally:
            await store.close()

    return max(asyncio.run(main()), int(nodes_failed))


def asterisks_own(directory: Path) -> None:
    """Refuse a DIR that is not an Asterisk configuration directory, before anything is written:
    a mistyped one was created and filled, Asterisk reloaded its own unchanged files, and the
    command said it had reloaded from DIR."""
    if not directory.is_dir():
        raise UsageError(f"--asterisk {directory}: no such directory; nothing was written or reloaded "
                         "(give the directory Asterisk reads its configuration from, e.g. /etc/asterisk)")
    if not (directory / "asterisk.conf").is_file():
        raise UsageError(f"--asterisk {directory}: no asterisk.conf there, so it is not where an Asterisk reads "
                         "its configuration; nothing was written or reloaded")


async def signal_and_wait(registry: "EngineRegistry", engine: str, pid: int, before: dict[str, str],
                          timeout: float) -> dict[str, str]:
    """SIGHUP the local engine; its status once it reports this reload."""
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise UsageError(f"engine pid {pid} is not running") from None
    deadline = time.monotonic() + timeout
    while (status := await registry.status(engine)).get("at") == before.get("at"):
        if time.monotonic() > deadline:
            raise UsageError(f"engine {engine} did not report a reload within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return status


async def confirmed(registry: "EngineRegistry", seq: int, timeout: float) -> None:
    """Until every live engine has handled announcement ``seq`` (bounded: the report says who did not)."""
    deadline = time.monotonic() + timeout
    while any(int(st.get("seq") or 0) < seq for st in (await registry.statuses()).values()):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


async def report(registry: "EngineRegistry") -> int:
    """One line per live engine and whether all run the announced version; 1 when they do not."""
    from ivr.store.engines import out_of_step

    statuses, wanted = await registry.statuses(), await registry.wanted()
    for line in engine_table(statuses):
        print(line)
    behind = out_of_step(wanted, statuses)
    if wanted is None:
        print(f"no version announced yet; {len(statuses)} engine(s) live")
        return 0
    if not behind:
        print(f"all {len(statuses)} engine(s) run the announced version {wanted.content} "
              f"(announcement {wanted.seq} by {wanted.origin})")
        return 0
    print(f"NOT all engines run the announced version {wanted.content} (announcement {wanted.seq} by {wanted.origin}):")
    for name, lag in behind.items():
        print(f"  {name}: " + {"unconfirmed": f"has not confirmed announcement {wanted.seq} yet",
                               "refused": f"refused the reload, runs {lag.version}",
                               "other": f"runs other files: {lag.version}"}[lag.why])
    return 1


def engine_table(statuses: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Identity, version, last reload and when, heartbeat age, leases: local times for people."""
    from ivr.store.engines import local_time, seconds_since

    rows = [("ENGINE", "VERSION", "LAST RELOAD", "HEARTBEAT", "LEASES")]
    for name, st in statuses.items():
        reload = f"{st.get('last_reload', '?')} {local_time(st.get('at', '')) or '?'}"
        age = seconds_since(st.get("heartbeat", ""))
        rows.append((name, st.get("version", "?"), reload, "?" if age is None else f"{age:.1f} s ago",
                     st.get("leases") or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def local_engine(pidfile: Path) -> tuple[int, int] | None:
    """(FastAGI port, pid) of the engine to signal: the one of ``agi.port`` (``pidfile``) if it
    runs, else another engine of this host (they share config/: any of them announces to all)."""
    others = sorted(p for p in pidfile.parent.glob("engine-*.pid") if p != pidfile)
    for path in [pidfile, *others]:
        port = path.stem.removeprefix("engine-")
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile, or half written
        if port.isdigit() and is_engine(pid):  # a stale file's pid may belong to another process now
            return int(port), pid
    return None


def is_engine(pid: int) -> bool:
    """True if ``pid`` runs ``ivr serve``: never signal a process that reused a stale pid."""
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and any(a.endswith((b"ivr", b"ivr/__main__.py")) or a == b"ivr" for a in argv)
