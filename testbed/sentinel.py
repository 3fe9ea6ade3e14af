"""A Redis master, its replicas and three Sentinels on loopback, for the cluster test bed
(docs/cluster.md): the same processes a deployment runs, with a short ``down-after`` so a
failover takes seconds in a test. Ports and pids live in the bed's state (testbed/state.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from testbed.processes import log_tail, spawn, stop_group, wait_port
from testbed.runners import TestbedError
from testbed.state import BedState

SERVICE = "ivr"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
QUORUM = 2


def start_data_node(port: int, workdir: Path, replica_of: int | None = None) -> subprocess.Popen[bytes]:
    """One redis-server with AOF on (what survives a restart is what was written to disk);
    ``replica_of``: the master's port. A replica accepts no writes."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis.log"
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--replica-announce-ip", "127.0.0.1",
            # a master with no replica in reach refuses writes: an isolated old master cannot take
            # tickets that the promoted replica will never see (docs/cluster.md, Redis)
            "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]
    if replica_of is not None:
        argv += ["--replicaof", "127.0.0.1", str(replica_of)]
    proc = spawn(argv, log)
    if not wait_port(port, 10, proc):
        raise TestbedError(f"redis-server did not start on port {port}:\n{log_tail(log)}")
    return proc


def start_sentinel(port: int, master_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """One Sentinel watching the master (it rewrites its own config file as the group changes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\nsentinel announce-ip 127.0.0.1\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} {QUORUM}\n"
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {SERVICE} 1\n"
    )
    log = workdir / "sentinel.log"
    proc = spawn(["redis-server", str(conf), "--sentinel"], log)
    if not wait_port(port, 10, proc):
        raise TestbedError(f"redis-sentinel did not start on port {port}:\n{log_tail(log)}")
    return proc


def start_group(state: BedState, base: Path) -> None:
    """Master (``state.redis_port``), replicas and sentinels; waits until every replica is in sync
    and every sentinel knows the replicas (a failover needs them)."""
    master, *replicas = state.redis_ports
    state.redis_pids = [start_data_node(master, base / f"redis-{master}").pid]
    state.redis_pid = state.redis_pids[0]
    state.redis_pids += [start_data_node(p, base / f"redis-{p}", replica_of=master).pid for p in replicas]
    state.sentinel_pids = [start_sentinel(p, master, base / f"sentinel-{p}").pid for p in state.sentinel_ports]
    wait_group_ready(state, 20.0)


def wait_group_ready(state: BedState, timeout: float) -> None:
    """Every live replica is linked to the master Sentinel names, and every sentinel sees the others."""
    deadline = time.monotonic() + timeout
    problem = "not asked yet"
    while time.monotonic() < deadline:
        try:
            problem = _group_problem(state)
        except (redis.RedisError, OSError) as exc:
            problem = str(exc)
        if not problem:
            return
        time.sleep(0.1)
    raise TestbedError(f"Redis Sentinel group not ready after {timeout:.0f} s: {problem}")


def _group_problem(state: BedState) -> str:
    port = master_port(state)
    master = redis.Redis(port=port, socket_timeout=1)
    try:
        replication = master.info("replication")
    finally:
        master.close()
    live = sum(1 for p, pid in zip(state.redis_ports, state.redis_pids) if pid and p != port)
    linked = [k for k, v in replication.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
    if replication.get("role") != "master" or len(linked) < live:
        return f"master {port}: {len(linked)} of {live} replicas online"
    for p in state.sentinel_ports:
        s = redis.Redis(port=p, socket_timeout=1)
        try:
            info = cast(dict[str, Any], s.sentinel_master(SERVICE))
        finally:
            s.close()
        if int(info.get("num-other-sentinels", 0)) < len(state.sentinel_ports) - 1 or int(info.get("num-slaves", 0)) < live:
            return f"sentinel {p}: {info.get('num-other-sentinels')} other sentinels, {info.get('num-slaves')} replicas"
    return ""


def master_port(state: BedState) -> int:
    """The master's port as the sentinels name it now (the first one that answers)."""
    for p in state.sentinel_ports:
        client = redis.Redis(port=p, socket_timeout=1, decode_responses=True)
        try:
            host_port = cast("tuple[str, int] | None", client.sentinel_get_master_addr_by_name(SERVICE))
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
        if host_port:
            return int(host_port[1])
    raise TestbedError("no sentinel names a master")


def sentinel_redis(state: BedState) -> aioredis.Redis:
    """An async client that follows the master (re-asking the sentinels after a failover)."""
    sentinel = Sentinel([("127.0.0.1", p) for p in state.sentinel_ports], socket_timeout=2)
    return sentinel.master_for(SERVICE, decode_responses=True, socket_timeout=2)


def stop_all(state: BedState) -> None:
    """Stop the sentinels first (no failover of a group being taken down), then every data node."""
    for pid in [*state.sentinel_pids, *state.redis_pids]:
        if pid:
            stop_group(pid, timeout=3)


class SentinelGroup:
    """The bed's Redis Sentinel group, for tests that kill a master (mixed into TestBed)."""

    state: BedState | None

    @property
    def dir(self) -> Path:  # TestBed's
        raise NotImplementedError

    def redis_master_port(self) -> int:
        assert self.state
        return master_port(self.state)

    def kill_redis_master(self) -> int:
        """SIGKILL the master Sentinel names now (as a host dying with its disk would); its port."""
        assert self.state
        port = master_port(self.state)
        index = self.state.redis_ports.index(port)
        stop_group(self.state.redis_pids[index], timeout=2, sig=9)
        self.state.redis_pids[index] = 0
        if port == self.state.redis_port:
            self.state.redis_pid = 0
        return port

    def wait_redis_master(self, other_than: int, timeout: float = 30.0) -> int:
        """Until the sentinels name a master on another port and its replicas are linked."""
        assert self.state
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if master_port(self.state) != other_than and not _group_problem(self.state):
                    return master_port(self.state)
            except (TestbedError, redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise TestbedError(f"no master other than {other_than} after {timeout:.0f} s")

    def restart_redis(self, port: int) -> None:
        """Bring a killed data node back, as a replica of the master Sentinel names now (AOF kept);
        Sentinel would make a returning old master a replica too, after its own announcement."""
        assert self.state
        index = self.state.redis_ports.index(port)
        current = master_port(self.state)
        proc = start_data_node(port, self.dir / f"redis-{port}", replica_of=current if current != port else None)
        self.state.redis_pids[index] = proc.pid
        if port == self.state.redis_port:
            self.state.redis_pid = proc.pid
        wait_group_ready(self.state, 30.0)
