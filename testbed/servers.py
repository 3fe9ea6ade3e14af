"""A bed's Asterisk and Redis as processes: started, made ready, killed as a crash or an outage
would, started again on the same ports. A mixin of :class:`testbed.bed.TestBed`, as
:class:`testbed.engines.EngineProcesses` is for its engines."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from ivr.ami.client import AmiClient, AmiError
from testbed.processes import log_tail, spawn, start_redis, stop_group, wait_port
from testbed.runners import DockerRunner, RootfsRunner, TestbedError
from testbed.sentinel import start_group
from testbed.state import BedState


class ServerProcesses:
    state: BedState | None
    runner: RootfsRunner | DockerRunner
    _asterisk: subprocess.Popen[bytes] | None
    _redis: subprocess.Popen[bytes] | None

    @property
    def dir(self) -> Path:  # TestBed's
        raise NotImplementedError

    def inner(self, sub: str) -> str:  # TestBed's
        raise NotImplementedError

    def save(self) -> None: ...  # TestBed's

    def stop_redis(self) -> None:
        """Kill Redis (as an outage would); :meth:`start_redis` brings it back on the same port."""
        if self.state and self.state.redis_pid:
            stop_group(self.state.redis_pid, timeout=2, sig=9)
            self.state.redis_pid = 0

    def start_redis(self) -> None:
        self._start_redis()
        self.save()

    def _start_redis(self) -> None:
        assert self.state
        if self.state.sentinel_ports:
            start_group(self.state, self.dir)
            return
        try:
            self._redis = start_redis(self.state.redis_port, self.dir / "redis", self.dir / "redis/redis.log")
        except RuntimeError as exc:
            raise TestbedError(str(exc)) from None
        self.state.redis_pid = self._redis.pid

    def _start_asterisk(self) -> None:
        assert self.state
        log = self.dir / "log/console.log"
        argv = ["/usr/sbin/asterisk", "-f", "-n", "-C", self.inner("etc/asterisk.conf")]
        # the deployment (config/ and prompts/) must be visible to process AGI inside
        # and the recordings directory, which lies outside the rootfs (recording.dir)
        shared = (str(Path(self.state.config_dir).parent), *([self.state.recording_dir] if self.state.recording_dir else []))
        files = {"/etc/resolv.conf": self.dir / "resolv.conf"} if self.state.dns_address else None
        self._asterisk = spawn(self.runner.command(argv, self.dir, shared, files), log)
        self.state.asterisk_pid = self._asterisk.pid
        try:
            asyncio.run(self._wait_fully_booted(30.0))
        except (AmiError, TimeoutError) as exc:
            raise TestbedError(f"Asterisk did not become ready ({exc}):\n{log_tail(log)}") from None

    async def _wait_fully_booted(self, timeout: float) -> None:
        """Ready = AMI login succeeded and FullyBooted arrived (not merely an open port)."""
        assert self.state and self._asterisk
        deadline = time.monotonic() + timeout
        if not wait_port(self.state.ami_port, timeout, self._asterisk):
            raise AmiError("AMI port never opened")
        while True:
            if self._asterisk.poll() is not None:
                raise AmiError(f"asterisk exited with code {self._asterisk.returncode}")
            client = AmiClient("127.0.0.1", self.state.ami_port, "testbed", self.state.testbed_ami_secret)
            booted = client.wait_for("FullyBooted")
            try:
                await client.connect(timeout=2)
                await asyncio.wait_for(booted, max(0.1, deadline - time.monotonic()))
                return
            except AmiError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
            finally:
                client.close()

    def crash_asterisk(self) -> None:
        """Kill Asterisk (SIGKILL: no hang-ups, no CDRs, as a crash or power cut would) and
        start it again on the same ports and configuration."""
        self.kill_asterisk()
        self.start_asterisk()

    def kill_asterisk(self) -> None:
        """SIGKILL Asterisk and leave it dead (a node that does not come back)."""
        assert self.state
        stop_group(self.state.asterisk_pid, timeout=2, sig=9)

    def start_asterisk(self) -> None:
        """Start Asterisk again on the same ports and configuration (after :meth:`kill_asterisk`)."""
        self._start_asterisk()
        self.save()
