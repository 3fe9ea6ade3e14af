"""Where the test bed's Asterisk runs: a Debian sid rootfs under chroot, or a Docker image.

Both are built from ``asterisk-conf/rootfs-recipe.sh`` and behave the same to the rest of the
test bed: ``command(argv)`` gives the host command that runs ``argv`` inside, with the
instance directory, the repository and this Python visible at their host paths (so process
AGI runs the very code and venv under test).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Protocol

from ivr.asterisk_conf import STATIC_DIR
from ivr.config import state_dir

RECIPE = STATIC_DIR / "rootfs-recipe.sh"
MODULES = STATIC_DIR / "modules"  # the project's own Asterisk modules (C), built by the recipe
DOCKERFILE = STATIC_DIR / "Dockerfile"
REPO = STATIC_DIR.parent
DEFAULT_MIRROR = "http://deb.debian.org/debian"

Progress = Callable[[str], None]


class TestbedError(Exception):
    """The test bed cannot be built or started; the message says what to do."""

    __test__ = False  # not a pytest test class


def recipe_hash() -> str:
    """Names the cached rootfs and image: the recipe and the modules' sources it builds."""
    digest = hashlib.sha256(RECIPE.read_bytes())
    for src in sorted(MODULES.glob("*.c")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    return digest.hexdigest()[:12]


def shared_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """Host paths the Asterisk side must see: the repo, this Python installation, ``extra``."""
    paths = {str(REPO), os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), *extra}
    # drop paths nested in another one
    return sorted(p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths))


class Runner(Protocol):
    name: str

    def ensure(self, progress: Progress) -> None:
        """Build what is missing (cached); fast when nothing changed."""

    def instance_base(self) -> Path:
        """Host directory under which instance trees live (visible inside at the same path)."""

    def command(self, argv: list[str], instance_dir: Path, shared: tuple[str, ...] = (),
                files: dict[str, Path] | None = None) -> list[str]:
        """The host command running ``argv`` inside, with ``instance_dir`` and ``shared`` visible
        and each host file of ``files`` in place of the inside path it is keyed by (a bed's
        own ``/etc/resolv.conf``)."""


class RootfsRunner:
    """Debian sid via debootstrap, run with chroot in a private mount namespace.

    Bind mounts live only in that namespace: when Asterisk exits, they are gone.
    """

    name = "rootfs"

    def __init__(self, root: Path | None = None):
        self.root = root or state_dir() / f"rootfs-sid-{recipe_hash()}"

    def ready(self) -> bool:
        return (self.root / ".ivr-ready").exists()

    def ensure(self, progress: Progress) -> None:
        if self.ready():
            return
        for tool in ("debootstrap", "chroot", "unshare"):
            if not shutil.which(tool):
                raise TestbedError(f"{tool} is not installed (apt-get install debootstrap util-linux)")
        if os.geteuid() != 0:
            raise TestbedError("building the Asterisk rootfs needs root (debootstrap, chroot)")
        lock_path = self.root.with_suffix(".lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second build waits for the first
            if self.ready():
                return
            self._build(progress)

    def _build(self, progress: Progress) -> None:
        tmp = self.root.with_name(self.root.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        mirror = host_debian_mirror()
        started = time.monotonic()
        progress(f"[1/3] debootstrap Debian sid from {mirror} into {tmp} (about 30 s)")
        _run_logged(["debootstrap", "--variant=minbase", "sid", str(tmp), mirror], tmp.with_suffix(".log"), progress)
        shutil.copy2("/etc/resolv.conf", tmp / "etc/resolv.conf")
        shutil.copy2(RECIPE, tmp / "root/rootfs-recipe.sh")
        shutil.copytree(MODULES, tmp / "root/modules")
        progress("[2/3] apt-get install asterisk, sounds, sipp; build our modules inside the rootfs (about 60 s)")
        _run_logged(["chroot", str(tmp), "sh", "/root/rootfs-recipe.sh"], tmp.with_suffix(".log"), progress)
        progress("[3/3] finishing")
        (tmp / ".ivr-ready").write_text(recipe_hash())
        shutil.rmtree(self.root, ignore_errors=True)
        tmp.rename(self.root)
        progress(f"Asterisk rootfs ready in {time.monotonic() - started:.0f} s: {self.root}")

    def instance_base(self) -> Path:
        base = self.root / "run/ivr-testbed"
        base.mkdir(parents=True, exist_ok=True)
        return base

    def command(self, argv: list[str], instance_dir: Path, shared: tuple[str, ...] = (),
                files: dict[str, Path] | None = None) -> list[str]:
        mounts = []
        for path in shared_paths(shared):
            inside = self.root / path.lstrip("/")
            inside.mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount --bind {path} {inside}")
        # over the rootfs's own file, in this mount namespace only: other beds keep theirs
        mounts += [f"mount --bind {host} {self.root / inside.lstrip('/')}" for inside, host in (files or {}).items()]
        # The instance dir already lies inside the rootfs; its inner path is what Asterisk uses.
        script = " && ".join(mounts + [f'exec chroot {self.root} "$@"'])
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "ivr-testbed", *argv]

    def inner_path(self, host_path: Path) -> str:
        return "/" + str(host_path.relative_to(self.root))


class DockerRunner:
    """The image built from ``asterisk-conf/Dockerfile``, run with host networking."""

    name = "docker"

    def __init__(self) -> None:
        self.image = f"ivr12345-asterisk:{recipe_hash()}"

    def ensure(self, progress: Progress) -> None:
        if subprocess.run(["docker", "image", "inspect", self.image], capture_output=True).returncode == 0:
            return
        progress(f"building Docker image {self.image} (about a minute)")
        subprocess.run(
            ["docker", "build", "-t", self.image, "-f", str(DOCKERFILE), str(STATIC_DIR)], check=True
        )

    def instance_base(self) -> Path:
        base = state_dir() / "docker-instances"
        base.mkdir(parents=True, exist_ok=True)
        return base

    def command(self, argv: list[str], instance_dir: Path, shared: tuple[str, ...] = (),
                files: dict[str, Path] | None = None) -> list[str]:
        volumes = [arg for p in [*shared_paths(shared), str(instance_dir)] for arg in ("-v", f"{p}:{p}")]
        volumes += [arg for inside, host in (files or {}).items() for arg in ("-v", f"{host}:{inside}:ro")]
        name = "ivr-testbed-" + instance_dir.name
        return ["docker", "run", "--rm", "--init", "--name", name, "--network", "host", *volumes, self.image, *argv]

    def inner_path(self, host_path: Path) -> str:
        return str(host_path)


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def select_runner(name: str | None = None) -> RootfsRunner | DockerRunner:
    """``IVR_TESTBED_RUNNER`` = rootfs | docker; default: Docker if an engine answers, else rootfs."""
    name = name or os.environ.get("IVR_TESTBED_RUNNER") or ("docker" if docker_available() else "rootfs")
    if name == "docker":
        return DockerRunner()
    if name == "rootfs":
        return RootfsRunner()
    raise TestbedError(f"unknown test bed runner {name!r} (use rootfs or docker)")


def host_debian_mirror() -> str:
    """The Debian mirror the host's apt already uses (never hard-code one)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            url = match.group(1)
            if "debian" in url and "security" not in url:
                return url.rstrip("/")
    return DEFAULT_MIRROR


def _run_logged(argv: list[str], log_path: Path, progress: Progress) -> None:
    """Run a slow step, showing a heartbeat line; on failure show the log's tail."""
    with open(log_path, "a") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started, next_report = time.monotonic(), 10
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - started
            if elapsed >= next_report:
                progress(f"      ... {next_report} s")
                next_report += 10
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise TestbedError(f"{' '.join(argv[:2])} failed (exit {proc.returncode}); log {log_path}:\n" + "\n".join(tail))
