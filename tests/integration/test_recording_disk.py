"""The recordings disk filling up, for real (issue 21 item 2; docs/recording.md "Failure costs").

The bed's recordings directory is put on a small file system of its own, which the engine (on
the host) and Asterisk (chrooted, in its private mount namespace: testbed/runners.py) both see:
one loop device mounted in each namespace is one file system (one superblock), as a disk of its
own is in production. Filled past the alarm, ``/metrics`` and the wallboard say so; filled to the
last block, a citizen is still answered by a seat and ticketed, and the ticket says its recording
failed and why; with space back, the next call is recorded again. Filled during a call, the file
holds the talk up to then and is kept marked incomplete; with no inode left (MixMonitor cannot
create its file at all), the alarm says why and so does the ticket.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from ivr.ami.client import AmiClient
from recording.store import state
from recording_fixtures import kept, switched_on, talk, talk_time
from testbed.bed import TestBed
from testbed.calls import Phones, run_ivr, until
from testbed.console import ConsoleSite, http_client, metric, sign_in_http
from testbed.runners import RootfsRunner
from testbed.sipp import keys
from tickets.store import TicketStore

DISK_MB = 8
ALARM = "ivr_recording_disk_alarm"


@pytest.fixture
async def policy(engine: TestBed, config_dir: Path) -> AsyncIterator[Path]:
    """Recorded from answer; the engine's disk alarm at 80 % use (or below 1 MB free)."""
    async with switched_on(engine, config_dir, reload_engine=True, notice=False) as directory:
        yield directory


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout.strip()


@contextlib.contextmanager
def small_disk(bed: TestBed, workdir: Path) -> Iterator[Path]:
    """The recordings directory on a fresh ``DISK_MB`` MB ext2 (no blocks reserved for root:
    Asterisk runs as root and would write into them), mounted over the bed's directory on the host
    and inside Asterisk's mount namespace (nsenter), where the bed bind-mounted it; all undone after."""
    assert bed.state and bed.state.recording_dir and bed.state.asterisk_pid
    assert isinstance(bed.runner, RootfsRunner), "the test enters the rootfs runner's mount namespace"
    image, host = workdir / "recordings.img", bed.state.recording_dir
    inside = str(bed.runner.root / host.lstrip("/"))
    with open(image, "wb") as f:
        f.truncate(DISK_MB << 20)
    run("mke2fs", "-q", "-F", "-m", "0", "-t", "ext2", str(image))
    loop = run("losetup", "--find", "--show", str(image))
    asterisk = ("nsenter", "-t", str(bed.state.asterisk_pid), "-m")
    undo: list[tuple[str, ...]] = [("losetup", "-d", loop)]
    try:
        run("mount", loop, host)
        undo.insert(0, ("umount", "-l", host))
        run(*asterisk, "mount", loop, inside)
        undo.insert(0, (*asterisk, "umount", "-l", inside))
        (Path(host) / "incoming").mkdir()
        yield Path(host)
    finally:
        for argv in undo:
            subprocess.run(argv, capture_output=True, timeout=30)
        image.unlink(missing_ok=True)


def fill(directory: Path, name: str, leave_free: int) -> None:
    """Write ``name`` until the disk has ``leave_free`` bytes left (0: until it is full)."""
    chunk = b"\0" * (64 << 10)
    with open(directory / name, "wb", buffering=0) as f:  # unbuffered: ext2 takes the blocks as it is written
        try:
            while (free := shutil.disk_usage(directory).free) > leave_free:
                f.write(chunk[:max(1, min(len(chunk), free - leave_free))])
        except OSError as exc:
            assert exc.errno == errno.ENOSPC and not leave_free, exc


async def board(site: ConsoleSite, check: Any) -> dict[str, Any]:
    """The wallboard's recordings disk tile data (``/wallboard.json`` as a supervisor) once ``check`` holds."""
    async with http_client() as http:
        await sign_in_http(http, site, site.account("supervisor"))

        async def shown() -> dict[str, Any] | None:
            async with http.get(site.url + "/wallboard.json") as reply:
                assert reply.status == 200
                tile = (await reply.json())["platform"]["recording_disk"]
            return tile if tile and check(tile) else None
        return await until(shown, 30)  # the worker measures after each sweep (≤ 10 s)


async def test_given_the_recordings_disk_fills_up_then_the_alarm_comes_first_and_calls_are_answered_all_the_same(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, console: ConsoleSite,
    tmp_path: Path,
) -> None:
    with small_disk(engine, tmp_path) as disk:
        total = shutil.disk_usage(disk).total
        fill(disk, "filler-1", leave_free=total * 15 // 100)  # 85 % used: past the alarm, far from full
        await until(lambda: metric(console, ALARM) == 1.0, 20)
        assert 0.84 <= metric(console, "ivr_recording_disk_used_ratio") <= 0.86
        tile = await board(console, lambda t: t["alarm"])
        assert tile["total"] == total and 0.84 <= tile["used_ratio"] <= 0.86

        fill(disk, "filler-2", leave_free=0)  # to the last block
        assert shutil.disk_usage(disk).free < 64 << 10
        seen: list[list[str]] = []
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 2000, seen,
                               disk / "incoming")
        assert ticket.answered and ticket.agent and ticket.number, "answered by a seat and ticketed, disk or no disk"
        [rec] = (stored := await kept(tickets, ticket.linkedid)).recordings
        assert rec.file == "" and rec.failed == "disk-full", rec
        assert state(rec, disk) == "failed"
        assert any(e.event == "recording failed" and e.detail.startswith("no audio written: the recordings disk was full")
                   for e in stored.timeline), stored.timeline
        assert not list((disk / "incoming").glob(f"{ticket.linkedid}.*"))

        for name in ("filler-1", "filler-2"):
            (disk / name).unlink()  # space is back (an operator purged, or a bigger disk)
        await until(lambda: metric(console, ALARM) == 0.0, 20)
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 2000, seen,
                               disk / "incoming")
        [rec] = (stored := await kept(tickets, ticket.linkedid)).recordings
        assert not rec.failed and rec.seconds >= 1.0 and state(rec, disk) == "ok", "the next call records again"
        await board(console, lambda t: not t["alarm"])


def exhaust_inodes(directory: Path) -> int:
    """Create empty files until the file system has no inode left; how many were made."""
    made = 0
    try:
        while True:
            (directory / f"inode-{made}").touch(exist_ok=False)
            made += 1
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    return made


async def test_given_the_disk_fills_during_a_call_then_its_file_is_kept_marked_incomplete_and_with_no_inode_left_the_ticket_says_why(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, console: ConsoleSite,
    tmp_path: Path,
) -> None:
    assert engine.state
    with small_disk(engine, tmp_path) as disk:
        incoming = disk / "incoming"

        async def fills_up(linkedid: str) -> None:
            """A second and a half into the talk the disk is full; once the seat is gone, space is back."""
            raw = incoming / f"{linkedid}.answer.raw"
            await until(lambda: raw.exists() and raw.stat().st_size >= 48_000, 20)
            fill(disk, "filler", leave_free=0)
            await until(lambda: (incoming / f"{linkedid}.answer.done").exists(), 30)  # the seat hung up
            (disk / "filler").unlink()

        seen: list[list[str]] = []
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 7000, seen,
                               incoming, during=fills_up)
        [rec] = (stored := await kept(tickets, ticket.linkedid)).recordings
        talked = talk_time(stored)
        assert rec.incomplete and not rec.failed and state(rec, disk) == "ok", rec
        assert rec.seconds < talked - 3 and abs(rec.expected - (stored.talk_seconds or 0)) < 0.01, (rec, talked)
        assert any(e.event == "recording incomplete" for e in stored.timeline), stored.timeline
        code, out = await run_ivr(engine.state, "recordings", "show", stored.number)
        assert code == 0 and f"INCOMPLETE: {rec.seconds:.1f} s of {rec.expected:.1f} s talk" in out, out

        made = exhaust_inodes(incoming)
        assert made > 0 and shutil.disk_usage(disk).free > 1 << 20, "space is there, inodes are not"
        await until(lambda: metric(console, ALARM) == 1.0, 20)
        tile = await board(console, lambda t: t["alarm"] and t["problem"] == "no-inodes")
        assert tile["used_ratio"] < 0.5
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 2000, seen,
                               incoming)
        assert ticket.answered and ticket.number, "answered and ticketed, recorded or not"
        [rec] = (stored := await kept(tickets, ticket.linkedid)).recordings
        assert rec.file == "" and rec.failed == "no-inodes" and state(rec, disk) == "failed", rec
        assert any(e.event == "recording failed" and e.detail == "no file created: the recordings disk has no free inode"
                   for e in stored.timeline), stored.timeline
        code, out = await run_ivr(engine.state, "recordings", "show", stored.number)
        assert code == 0 and "recording FAILED" in out and "no-inodes (no file created" in out, out
        for n in range(made):
            (incoming / f"inode-{n}").unlink()
        await until(lambda: metric(console, ALARM) == 0.0, 20)
        await board(console, lambda t: not t["alarm"] and not t["problem"])
