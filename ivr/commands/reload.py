"""`ivr reload`: make the running engine recompile config/ (same as SIGHUP) and report.

Only a fully valid config goes live; calls in progress finish on the version they started
with. The live version and the last reload's outcome are read back from Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from ivr.cli import UsageError, config_dir
from ivr.config import load_config
from ivr.core.identity import engine_identity

HELP = "recompile config/ in the running engine (only a fully valid set goes live)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="store_true", help="only show the live version, do not reload")
    p.add_argument("--asterisk", type=Path, metavar="DIR", default=None,
                   help="first render Asterisk's configuration into DIR (e.g. /etc/asterisk) and reload it: "
                        "agents, queues, trunks (see `ivr asterisk-conf apply`)")
    p.add_argument("--timeout", type=float, default=15.0)


def run(args: argparse.Namespace) -> int:
    from ivr.service import engine_pidfile
    from ivr.store import CallStore

    loaded = load_config(config_dir(args))
    s = loaded.settings
    if args.asterisk is not None and not args.status:
        from ivr.commands.asterisk_conf import apply, render_to
        from ivr.hot_reload import catalog_loader, compile_config, default_prompts_dir

        # the whole config must be valid before Asterisk sees any of it (raises with file:line)
        compile_config(loaded.config_dir, catalog_loader(default_prompts_dir(loaded.config_dir))())
        render_to(s, args.asterisk)
        asyncio.run(apply(s))
        print(f"Asterisk reloaded from {args.asterisk}: endpoints, queues, dialplan")
    pidfile = engine_pidfile(s.agi.port)
    if not pidfile.exists():
        raise UsageError(f"no engine running for FastAGI port {s.agi.port} (no {pidfile})")
    pid = int(pidfile.read_text())
    if not is_engine(pid):
        raise UsageError(f"pid {pid} in {pidfile} is not a running `ivr serve` (stale pid file?)")
    engine = engine_identity(s.agi.port, pid=pid)  # the name it publishes its status under

    async def main() -> int:
        from ivr.config import state_dir

        store = CallStore(s.redis.url, state_dir() / "spool", name="reload")  # reads status only
        try:
            before = await store.engine_status(engine)
            if not args.status:
                try:
                    os.kill(pid, signal.SIGHUP)
                except ProcessLookupError:
                    raise UsageError(f"engine pid {pid} from {pidfile} is not running") from None
                deadline = time.monotonic() + args.timeout
                while (status := await store.engine_status(engine)).get("at") == before.get("at") or status == before:
                    if time.monotonic() > deadline:
                        raise UsageError(f"engine {engine} did not report a reload within {args.timeout:.0f} s")
                    await asyncio.sleep(0.1)
            else:
                status = before
        finally:
            await store.close()
        if status.get("last_reload") == "refused" and not args.status:
            print(f"reload refused; version {status['version']} stays live:")
            print(status.get("errors", ""))
            return 1
        print(f"engine {engine} (pid {status.get('pid')}): version {status.get('version')} is live"
              + ("" if args.status else " (reloaded)"))
        return 0

    return asyncio.run(main())


def is_engine(pid: int) -> bool:
    """True if ``pid`` runs ``ivr serve``: never signal a process that reused a stale pid."""
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and any(a.endswith((b"ivr", b"ivr/__main__.py")) or a == b"ivr" for a in argv)
