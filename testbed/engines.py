"""The bed's engines: one ``ivr serve`` process each, on its own FastAGI and console ports, all
sharing the bed's Asterisk, Redis, config and state directory (docs/cluster.md). Mixed into
:class:`testbed.bed.TestBed`; engine 0 is the one a single-engine bed has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testbed.processes import log_tail, pid_alive, spawn, stop_group, wait_port
from testbed.runners import TestbedError
from testbed.state import BedState


class EngineProcesses:
    state: BedState | None

    @property
    def dir(self) -> Path:  # TestBed's
        raise NotImplementedError
    _engine: subprocess.Popen[bytes] | None

    def save(self) -> None: ...  # TestBed's

    def engine_log(self, index: int = 0) -> Path:
        return self.dir / ("engine.log" if index == 0 else f"engine-{index}.log")

    def _set_pid(self, index: int, pid: int) -> None:
        assert self.state
        if self.state.engine_pids:
            self.state.engine_pids[index] = pid
        if index == 0:
            self.state.engine_pid = pid

    def engine_pid(self, index: int = 0) -> int:
        assert self.state
        return self.state.engine_pids[index] if self.state.engine_pids else self.state.engine_pid

    def engine_running(self, index: int = 0) -> bool:
        pid = self.engine_pid(index)
        return bool(pid) and pid_alive(pid)

    def start_engine(self, extra_env: dict[str, str] | None = None, index: int = 0) -> subprocess.Popen[bytes]:
        """Run ``ivr serve`` as engine ``index`` of this bed (with ``extra_env`` over the bed's
        environment); return once its FastAGI port accepts."""
        assert self.state
        env = {**os.environ, **self.state.engine_env(index), **(extra_env or {})}
        log = self.engine_log(index)
        proc = spawn([sys.executable, "-m", "ivr", "serve"], log, env=env)
        if index == 0:
            self._engine = proc
        self._set_pid(index, proc.pid)
        self.save()
        agi_port = int(env["IVR_AGI_PORT"])
        if not wait_port(agi_port, 20, proc):
            raise TestbedError(f"engine {index} did not start:\n{log_tail(log)}")
        web_port = int(env.get("IVR_WEB_PORT", "0"))
        if env.get("IVR_WEB_ENABLED", "true") != "false" and web_port and not wait_port(web_port, 10, proc):
            raise TestbedError(f"engine {index}'s console did not start:\n{log_tail(log)}")
        return proc

    def start_engines(self) -> None:
        assert self.state
        for index in range(self.state.engines):
            self.start_engine(index=index)

    def stop_engine(self, index: int = 0, timeout: float = 15.0) -> None:
        """Stop an engine as an operator would (SIGTERM: calls and deliveries in flight finish)."""
        if self.state and self.engine_pid(index):
            stop_group(self.engine_pid(index), timeout=timeout)
            self._set_pid(index, 0)
            self.save()

    def kill_engine(self, index: int = 0) -> None:
        """Kill an engine abruptly (SIGKILL), as a crash would."""
        if self.state and self.engine_pid(index):
            stop_group(self.engine_pid(index), timeout=2, sig=9)
            self._set_pid(index, 0)
            self.save()

    def stop_engines(self, timeout: float = 3.0) -> None:
        assert self.state
        for index in range(self.state.engines):
            if self.engine_pid(index):
                stop_group(self.engine_pid(index), timeout=timeout)
                self._set_pid(index, 0)
