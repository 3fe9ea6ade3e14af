"""The recordings on disk: compressing a finished call's raw file, checking a kept file against
its ticket, deleting what retention says, and the disk's headroom.

Asterisk writes ``<dir>/incoming/<id>.<mode>.raw`` (MixMonitor, stereo 8 kHz signed linear) and
renames it ``.done`` when the recording ends; :mod:`recording.worker` compresses a ``.done`` to
``<dir>/YYYY/MM/DD/<ticket number>.opus`` with libopus at 8 kHz (:mod:`recording.opus`), in a
niced thread of its own: the event loop only waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from recording.opus import OpusError, encode_file
from recording.rules import DISCARD_SUFFIX, INCOMING, RecordingSettings, call_id_ok, disk_alarm, disk_problem, expired
from tickets.model import Recording, Ticket

DONE_SUFFIX = ".done"
CHUNK = 1 << 20
NICE = 10  # the encoder's thread yields to calls (Linux: a thread's own nice value)
ENCODER_THREAD = "ivr-rec-encode"  # its name in top -H and /proc (what the benchmark measures)


class EncodeError(Exception):
    """The encoder failed or libopus is missing: the raw file stays, the next sweep tries again."""


def _niced() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    try:
        Path("/proc/thread-self/comm").write_text(ENCODER_THREAD, encoding="ascii")
    except OSError:
        pass  # not Linux: only the name is missing


_encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-encode", initializer=_niced)


@dataclass(frozen=True)
class Finished:
    """A recording Asterisk finished: ``<id>.<mode>.done`` in the incoming directory."""

    path: Path
    call_id: str  # the linkedid of the call whose ticket it belongs to
    mode: str  # answer / start
    base: str  # <id>.<mode>: the discard mark's name too

    @property
    def discarded(self) -> bool:
        """The call's matter or queue said never after a recording from the start began."""
        return self.path.with_name(self.base + DISCARD_SUFFIX).exists()


def incoming(s: RecordingSettings) -> Path:
    return Path(s.dir) / INCOMING


def finished(s: RecordingSettings) -> list[Finished]:
    """Every finished raw file, oldest first; a name that is not ``<linkedid>[-cb-<linkedid>].<mode>``
    is left alone (nothing but MixMonitor writes there)."""
    out = []
    try:
        paths = sorted(incoming(s).glob("*" + DONE_SUFFIX), key=_mtime)
    except OSError:
        return []
    for path in paths:
        base = path.name.removesuffix(DONE_SUFFIX)
        ident, _, mode = base.rpartition(".")
        call_id = ident.split("-cb-")[0]
        if mode in ("answer", "start") and call_id_ok(ident) and call_id_ok(call_id):
            out.append(Finished(path, call_id, mode, base))
    return out


async def encode(raw: Path, dest: Path, bitrate_kbps: int) -> None:
    """``raw`` (stereo 8 kHz s16le) to Ogg Opus at ``dest`` (written whole, then renamed in), in the
    niced encoder thread (one file at a time: the CPU it takes is the same, spread)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        await asyncio.get_running_loop().run_in_executor(_encoder, encode_file, raw, part, bitrate_kbps)
    except (OpusError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise EncodeError(f"{raw.name} not encoded: {exc}") from None
    os.replace(part, dest)


def digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file (blocking: call it in a thread)."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def state(rec: Recording, root: Path) -> str:
    """``ok``, ``deleted``, ``failed`` (nothing was written: ``rec.failed`` says why), ``missing``,
    or ``altered`` (size or SHA-256 differs from the ticket's): a file is presented as the call's
    only when it is ``ok`` (blocking: reads the whole file)."""
    if rec.deleted:
        return "deleted"
    if rec.failed:
        return "failed"
    path = resolve(root, rec.file)
    if path is None or not path.is_file():
        return "missing"
    if path.stat().st_size != rec.size:
        return "altered"
    return "ok" if digest(path)[0] == rec.sha256 else "altered"


def resolve(root: Path, relative: str) -> Path | None:
    """A ticket's file path under ``root``, or None when it would lead outside it."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return None
    return root / rel


def purge(ticket: Ticket, root: Path, now: datetime, retention_days: float, why: str = "retention") -> list[Recording]:
    """Delete the ticket's expired recordings' files and mark them deleted on it (returns those
    changed; the caller writes the ticket). A file already gone is marked all the same."""
    changed: list[Recording] = []
    if not expired(ticket.received, now, retention_days):
        return changed
    for rec in ticket.recordings:
        if rec.deleted or rec.failed:  # a failed one has no file: the ticket keeps saying why
            continue
        path = resolve(root, rec.file)
        if path is not None:
            path.unlink(missing_ok=True)
        rec.deleted, rec.deleted_why = now.isoformat(timespec="seconds"), why
        ticket.note(rec.deleted, "recording deleted", f"{rec.file} ({why})")
        changed.append(rec)
    return changed


def stale_files(root: Path, now: float, retention_days: float) -> list[Path]:
    """Files older than retention whose ticket may be gone (its TTL): kept recordings and raw files
    nobody claimed. Their ticket, if any, was purged first; these are deleted without one."""
    cutoff = now - retention_days * 86_400
    out = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and path.suffix in (".opus", ".raw", ".done", ".discard") and path.stat().st_mtime < cutoff:
                out.append(path)
        except OSError:
            continue
    return out


@dataclass(frozen=True)
class Disk:
    total: int
    free: int
    alarm: bool
    problem: str = ""  # no file can be created there: no-inodes / not-writable (recording.rules.disk_problem)

    @property
    def used_ratio(self) -> float:
        return (self.total - self.free) / self.total if self.total else 1.0


def disk(s: RecordingSettings) -> Disk | None:
    """The headroom of the disk that holds ``dir`` (None: the directory is not there), and whether a
    file can be created in its incoming directory at all (free inodes; writable by this user, who
    shares Asterisk's group: a directory that lost its write bit loses it for both)."""
    try:
        usage, vfs = shutil.disk_usage(s.dir), os.statvfs(s.dir)
    except OSError:
        return None
    where = incoming(s) if incoming(s).is_dir() else Path(s.dir)  # MixMonitor makes a missing directory
    problem = disk_problem(vfs.f_files, vfs.f_favail, os.access(where, os.W_OK | os.X_OK))
    return Disk(usage.total, usage.free, disk_alarm(s, usage.total, usage.free, problem), problem)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
