"""The bed's engines: one ``ivr serve`` process each, on its own FastAGI and console ports, all
sharing the bed's Asterisk, Redis, config and state directory (docs/cluster.md). Mixed into
:class:`testbed.bed.TestBed`; engine 0 is the one a single-engine bed has."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
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
        started = self.spawn_engine(extra_env, index)
        started.wait()
        return started.proc

    def spawn_engine(self, extra_env: dict[str, str] | None = None, index: int = 0) -> "Spawned":
        """Start engine ``index`` without waiting for it: a bed's engines start side by side (each
        spends seconds importing before it listens), then :meth:`Spawned.wait` for each."""
        assert self.state
        env = {**os.environ, **self.state.engine_env(index), **(extra_env or {})}
        log = self.engine_log(index)
        proc = spawn([sys.executable, "-m", "ivr", "serve"], log, env=env)
        if index == 0:
            self._engine = proc
        self._set_pid(index, proc.pid)
        self.save()
        return Spawned(proc, index, log, int(env["IVR_AGI_PORT"]),
                       int(env.get("IVR_WEB_PORT", "0")) if env.get("IVR_WEB_ENABLED", "true") != "false" else 0)

    def spawn_engines(self) -> list["Spawned"]:
        assert self.state
        return [self.spawn_engine(index=index) for index in range(self.state.engines)]

    def start_engines(self) -> None:
        for started in self.spawn_engines():
            started.wait()

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


@dataclass
class Spawned:
    """An engine just started: ready once its FastAGI port (and its console's, if it has one) accepts."""

    proc: subprocess.Popen[bytes]
    index: int
    log: Path
    agi_port: int
    web_port: int  # 0: no console

    def wait(self) -> None:
        if not wait_port(self.agi_port, 30, self.proc):  # side by side with the bed's other engines
            raise TestbedError(f"engine {self.index} did not start:\n{log_tail(self.log)}")
        if self.web_port and not wait_port(self.web_port, 10, self.proc):
            raise TestbedError(f"engine {self.index}'s console did not start:\n{log_tail(self.log)}")
