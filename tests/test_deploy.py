"""deploy/ as an operator installs it: the systemd units pass `systemd-analyze verify` (the single
engine's unit and the template for several engines), and the Redis and Sentinel examples load in
the real servers with the settings docs/cluster.md promises (AOF, min-replicas-to-write, a
Sentinel watching service "ivr")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import redis

from ivr.store import keyspace
from testbed.ports import PortAllocator
from testbed.processes import log_tail, spawn, wait_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def verify(units: Path, *names: str) -> str:
    """`systemd-analyze verify` of ``names`` in ``units``; its complaints ('' when none)."""
    env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=units, env=env,
                          capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f"\n(exit {done.returncode})")


def installed(tmp_path: Path, name: str) -> Path:
    """The unit as installed, with /opt/ivr12345 being this checkout (its .venv's `ivr` exists)."""
    text = (DEPLOY / name).read_text().replace("/opt/ivr12345/.venv/bin/ivr", str(Path(sys.executable).parent / "ivr"))
    (tmp_path / name).write_text(text.replace("/opt/ivr12345", str(DEPLOY.parent)))
    return tmp_path / name


def test_the_single_engine_unit_and_the_template_for_several_engines_verify_clean(tmp_path: Path) -> None:
    installed(tmp_path, "ivr12345.service")
    installed(tmp_path, "ivr12345@.service")
    (tmp_path / "ivr12345@4574.service").symlink_to("ivr12345@.service")
    assert verify(tmp_path, "./ivr12345.service", "./ivr12345@4574.service") == ""

    (tmp_path / "broken.service").write_text((tmp_path / "ivr12345.service").read_text().replace("Type=", "Tpye="))
    assert "Unknown key" in verify(tmp_path, "./broken.service")  # the check sees a misspelt key


def test_each_instance_of_the_template_is_one_engine_on_its_own_fastagi_port() -> None:
    unit = (DEPLOY / "ivr12345@.service").read_text()
    service = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
    assert re.findall(r"^Environment=(.*)$", service, re.M) == ["IVR_AGI_PORT=%i"]
    # the node's file, then the engine's own (required: its console port); the port is not in a file
    assert re.findall(r"^EnvironmentFile=(.*)$", service, re.M) == ["/etc/ivr12345/ivr.env",
                                                                   "/etc/ivr12345/engine-%i.env"]
    for line in ("Type=notify", "WatchdogSec=10", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=always"):
        assert line in service.splitlines()


@pytest.fixture
def example_master(tmp_path: Path) -> Iterator[tuple[int, redis.Redis]]:
    """A data node whose redis.conf includes deploy/redis/redis-ivr.conf, as the file says, on loopback."""
    port = PortAllocator().one()
    (tmp_path / "redis.conf").write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                                         f"include {DEPLOY / 'redis' / 'redis-ivr.conf'}\n")
    proc = spawn(["redis-server", str(tmp_path / "redis.conf")], tmp_path / "redis.log")
    assert wait_port(port, 10, proc), log_tail(tmp_path / "redis.log")
    client = redis.Redis(port=port, decode_responses=True)
    yield port, client
    client.close()
    proc.kill()
    proc.wait()


def test_the_redis_example_keeps_an_append_only_file_and_refuses_writes_without_a_replica(
        example_master: tuple[int, redis.Redis]) -> None:
    _, client = example_master
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert client.config_get("min-replicas-max-lag") == {"min-replicas-max-lag": "10"}
    with pytest.raises(redis.exceptions.ResponseError, match="NOREPLICAS"):
        client.set(keyspace.REPLICATION_MARK, "1")  # alone, the master does not acknowledge a write it could lose


def test_the_sentinel_example_watches_service_ivr_with_a_quorum_of_two(
        example_master: tuple[int, redis.Redis], tmp_path: Path) -> None:
    master_port, _ = example_master
    port = PortAllocator().one()
    conf = (DEPLOY / "redis" / "sentinel-ivr.conf").read_text()
    assert conf.count("port 26379\n") == 1 and conf.count(" 10.0.0.11 6379 ") == 1
    conf = conf.replace("port 26379\n", f"port {port}\n").replace(" 10.0.0.11 6379 ", f" 127.0.0.1 {master_port} ")
    (tmp_path / "sentinel.conf").write_text(conf + f"\nbind 127.0.0.1\ndir {tmp_path}\n")  # Sentinel rewrites it
    proc = spawn(["redis-server", str(tmp_path / "sentinel.conf"), "--sentinel"], tmp_path / "sentinel.log")
    try:
        assert wait_port(port, 10, proc), log_tail(tmp_path / "sentinel.log")
        sentinel = redis.Redis(port=port, decode_responses=True)
        master = sentinel.execute_command("SENTINEL", "MASTER", "ivr")
        fields = dict(zip(master[::2], master[1::2])) if isinstance(master, list) else master
        assert (fields["ip"], int(fields["port"]), int(fields["quorum"])) == ("127.0.0.1", master_port, 2)
        assert int(fields["down-after-milliseconds"]) == 5000
        with pytest.raises(redis.exceptions.ResponseError, match="NOQUORUM 1 usable"):
            sentinel.execute_command("SENTINEL", "CKQUORUM", "ivr")  # a lone sentinel cannot fail over: 3 of them
        sentinel.close()
    finally:
        proc.kill()
        proc.wait()


def test_the_proxies_unit_runs_the_rendered_config_with_the_control_group_the_engines_join(tmp_path: Path) -> None:
    """deploy/kamailio-ivr@.service runs `kamailio-<proxy>.cfg` where the render puts it, in the
    sample topology's ``control_group``, with the control sockets' directory; the engines' drop-in
    joins that group; both verify clean."""
    from ivr.asterisk_conf.kamctl import RUN_DIR

    unit = (DEPLOY / "kamailio-ivr@.service").read_text()
    group = re.search(r"^  control_group: (\S+)", (DEPLOY / "cluster.yaml").read_text(), re.M)
    assert group
    service = unit.split("[Service]", 1)[1].split("\n[", 1)[0].splitlines()
    assert f"Group={group[1]}" in service and "User=kamailio" in service
    assert f"RuntimeDirectory={RUN_DIR.removeprefix('/run/')}" in service and "RuntimeDirectoryPreserve=yes" in service
    assert "RuntimeDirectoryMode=0750" in service  # the group traverses it, nobody else
    [start] = [line for line in service if line.startswith("ExecStart=")]
    assert " -DD " in start and "-f /etc/kamailio/kamailio-%i.cfg" in start
    dropin = (DEPLOY / "ivr12345@.service.d" / "kamailio-control.conf").read_text()
    assert f"SupplementaryGroups={group[1]}" in dropin.splitlines()
    (tmp_path / "kamailio-ivr@.service").write_text(unit)
    (tmp_path / "kamailio-ivr@edge-a.service").symlink_to("kamailio-ivr@.service")
    installed(tmp_path, "ivr12345@.service")
    (tmp_path / "ivr12345@.service.d").mkdir()
    (tmp_path / "ivr12345@.service.d" / "kamailio-control.conf").write_text(dropin)
    (tmp_path / "ivr12345@4573.service").symlink_to("ivr12345@.service")
    assert verify(tmp_path, "./kamailio-ivr@edge-a.service", "./ivr12345@4573.service") == ""
