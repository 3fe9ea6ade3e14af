"""Process AGI entry (``ivr-agi``): Asterisk starts one process per call and talks AGI over
its stdin/stdout. pyst2 reads the AGI environment and handles SIGHUP; the commands, reply
parsing and the whole call logic are the same code the FastAGI server runs.

Dialplan: ``AGI(/path/to/.venv/bin/ivr-agi,<dialed>,<env file>)``. The env file holds the
``IVR_*`` settings (as a systemd EnvironmentFile would): Asterisk passes no environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from asterisk.agi import AGI

from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import call_info
from ivr.core.channel import CallerHungUp


class ProcessChannel(AgiChannel):
    """AGI over this process's stdin/stdout."""

    def __init__(self, agi: AGI):
        super().__init__()
        self._agi = agi

    async def _write(self, command: str) -> None:
        try:
            self._agi.send_command(command)
        except BrokenPipeError:
            raise CallerHungUp("Asterisk closed the AGI pipe") from None

    async def _close(self) -> None:
        self._agi.stdout.close()  # Asterisk reads EOF and leaves AGI(); we may still store

    async def _readline(self) -> str:
        # in a thread, so the engine's deadline (asyncio.timeout) can fire during a read
        line = await asyncio.to_thread(self._agi.stdin.readline)
        if not line:
            raise CallerHungUp("Asterisk closed the AGI pipe")
        return line.rstrip("\r\n")


def read_env_file(path: str | Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments), as in a systemd EnvironmentFile."""
    env: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    return env


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    from ivr.agi.call_guard import resume_key
    from ivr.config import caller_key, load_config
    from ivr.engine import Engine
    from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
    from ivr.store import CallStore

    # pyst2 writes the whole AGI environment (caller numbers included) to stderr: keep it quiet.
    agi = AGI(stdin=stdin, stdout=stdout, stderr=open(os.devnull, "w"))
    call = call_info(agi.env)
    environ = read_env_file(call.arguments[1]) if len(call.arguments) > 1 else dict(os.environ)
    os.environ.update({k: v for k, v in environ.items() if k == "IVR_STATE_DIR"})
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loaded = load_config(environ.get("IVR_CONFIG", "config"), environ=environ)
    s = loaded.settings
    flows = LiveFlows.from_config(loaded.config_dir, catalog_loader(default_prompts_dir(loaded.config_dir)),
                                  environ=environ)

    async def handle() -> None:
        from ivr.config import state_dir

        # its own journal (calls-process.<pid>.<random>.jsonl); left behind only if Redis did not take
        # the record, and then replayed by the engine server's flusher
        store = CallStore(s.redis, state_dir() / "spool", name="process")
        try:
            key = caller_key(environ)  # the engines' key: this process resumes and leaves points like them
            engine = Engine(flows, store, call_timeout=s.agi.call_timeout,
                            resume_key=resume_key(key) if key is not None else None)
            await engine.handle_call(call, ProcessChannel(agi))
        finally:
            await store.close()

    asyncio.run(handle())
    return 0
