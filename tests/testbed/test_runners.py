"""The two Asterisk runners build the same kind of command: Asterisk sees the instance, the
repository and this Python at their host paths, and shares the host's loopback."""

from __future__ import annotations

import sys

import pytest
from pathlib import Path

from testbed.runners import REPO, DockerRunner, RootfsRunner, host_debian_mirror, recipe_hash, shared_paths


def test_rootfs_runner_binds_shared_paths_in_a_private_mount_namespace(tmp_path: Path) -> None:
    runner = RootfsRunner(root=tmp_path / "root")
    cmd = runner.command(["/usr/sbin/asterisk", "-f"], tmp_path / "root/run/ivr-testbed/x", ("/srv/deploy",))
    assert cmd[:4] == ["unshare", "--mount", "--propagation", "private"]
    script = cmd[6]
    for path in [str(REPO), "/srv/deploy"]:
        assert f"mount --bind {path} {tmp_path / 'root' / path.lstrip('/')}" in script
    assert script.endswith(f'exec chroot {tmp_path / "root"} "$@"')
    assert cmd[-2:] == ["/usr/sbin/asterisk", "-f"]
    assert runner.inner_path(tmp_path / "root/run/ivr-testbed/x/etc") == "/run/ivr-testbed/x/etc"


def test_docker_runner_uses_host_network_and_same_path_volumes(tmp_path: Path) -> None:
    cmd = DockerRunner().command(["/usr/sbin/asterisk", "-f"], tmp_path / "inst")
    assert cmd[:3] == ["docker", "run", "--rm"]
    assert ["--network", "host"] == cmd[cmd.index("--network") : cmd.index("--network") + 2]
    assert f"{tmp_path / 'inst'}:{tmp_path / 'inst'}" in cmd
    assert f"{REPO}:{REPO}" in cmd
    assert f"ivr12345-asterisk:{recipe_hash()}" in cmd


def test_shared_paths_drop_nested_ones() -> None:
    paths = shared_paths((str(REPO / "config"),))
    assert str(REPO / "config") not in paths and str(REPO) in paths
    assert any(sys.base_prefix.startswith(p) or p.startswith(sys.base_prefix) for p in paths)


def test_mirror_is_read_from_the_hosts_apt_sources() -> None:
    assert host_debian_mirror().startswith("http")


def test_test_bed_ports_stay_below_the_ephemeral_range() -> None:
    from testbed.ports import PortAllocator, ephemeral_low

    ports = PortAllocator()
    assert all(10000 <= ports.one() < ephemeral_low() for _ in range(50))
    base = ports.block(40)
    assert base % 2 == 0 and base + 40 <= ephemeral_low()


def test_the_rootfs_is_named_by_the_recipe_and_the_modules_it_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import testbed.runners as runners

    (tmp_path / "app_x.c").write_text("int x;\n")
    monkeypatch.setattr(runners, "MODULES", tmp_path)
    before = recipe_hash()
    (tmp_path / "app_x.c").write_text("int y;\n")  # a changed module is a new rootfs: it is built again
    assert recipe_hash() != before
    assert RootfsRunner().root.name == f"rootfs-sid-{recipe_hash()}"
