"""Retention of Asterisk's own call logs: the CDR file (``Master.csv``) and ``queue_log`` hold
caller numbers, so ``ivr serve`` rotates them daily and deletes them after
``tickets.retention_days``, like the tickets in Redis.

How Asterisk 22 writes them decides how they can be rotated. Read in the 22.10 sources and
watched on the test bed's Asterisk 22.10.1 (strace, ``/proc/PID/fdinfo``):

- **CDR** (``cdr_custom.so`` on ``res_cdrel_custom``, ``writers.c: write_record_to_file``):
  every record is ``fopen(path, "a")``, one ``write`` of the whole line, ``fclose`` —
  ``open(O_WRONLY|O_CREAT|O_APPEND, 0666)`` per line. A file renamed away gets at most the line
  whose ``open`` came just before the rename; the next line goes to the file at ``path`` (one
  we put there, or one Asterisk creates with its own umask).
- **queue_log** (``main/logger.c``): ``fopen(path, "a")`` once (``O_WRONLY|O_APPEND``), kept
  open; each event is one ``fprintf`` + ``fflush``, one ``write``. Asterisk reopens it only on
  ``logger reload`` / ``logger rotate`` — AMI ``LoggerRotate``, privilege ``system`` or
  ``reporting`` (the class ``CoreShowChannels`` needs too). With logger.conf's default
  ``rotatestrategy = sequential`` that action also renames the file to ``queue_log.0`` itself;
  with ``rotatestrategy = none`` it only closes and reopens it.

So both are rotated by rename, never by copy-then-truncate: truncation is harmless to an
O_APPEND writer's offsets, but whatever it writes between the copy and the truncate is lost.
A rename keeps the inode: a line written during the rotation lands whole in the renamed file or
in the new one. Where the engine may give the new file Asterisk's owner (it runs as root or as
Asterisk's user) it puts an empty file with the same owner and mode in place in the same
instant (``link`` + ``rename`` over); otherwise Asterisk creates it, and the mode comes from
Asterisk's umask (a run reports a current file laxer than its rotated ones). queue_log then
needs the ``reopen`` hook (AMI ``LoggerRotate`` with ``rotatestrategy = none``); until
Asterisk has reopened it, its lines keep landing in the rotated file, which is then not split
and is asked to reopen again at the next run.

Names and ages: ``<name>.<yyyymmdd>`` holds the lines written on that local day; they are kept
for ``retention_days`` days (through day D + N − 1) and deleted at the first run on day D + N,
so no line outlives the retention by more than the time to that run (``run_retention`` wakes
just after midnight). The day of a line is its leading epoch (queue_log) or the last
``YYYY-MM-DD HH:MM:SS`` in it (the CDR's ``end``: when Asterisk wrote it); a line without one
belongs with the line before it. Lines written after midnight but before the rotation go into
the day that just ended (deleted up to a day early, never late). A file that spans several days
(the engine was down over midnight, or a CDR file from before this engine) is moved to
``<name>.rotating`` and split by day once its writer has let go of it (``grace`` seconds after
the move for the CDR; after the reopen for queue_log); lines already past the retention are not
copied. If the engine dies while splitting, the split runs again and some lines may be written
twice (the CDR reader is idempotent by linkedid); none is lost.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time as day_start, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO

from ivr.config import Settings

log = logging.getLogger(__name__)

EDGE = 64 * 1024          # bytes read at either end of a file to find its first and last line's day
REOPEN_TIMEOUT = 10.0     # seconds the engine waits for Asterisk to answer the reopen request
LEADING_EPOCH = re.compile(rb"(\d{9,11})\|")                              # queue_log: 1796160732|…
STAMP = re.compile(rb"(\d{4})-(\d{2})-(\d{2}) \d{2}:\d{2}:\d{2}")         # CDR: "2026-12-01 21:32:15"
DAY_SUFFIX = re.compile(r"\.(\d{8})", re.ASCII)


@dataclass(frozen=True)
class LogFile:
    """One of Asterisk's files with caller numbers, and how Asterisk writes it."""

    path: Path
    kept_open: bool = False  # queue_log: opened once and held; the CDR file: reopened per line


@dataclass
class RetentionReport:
    """What one run did, for the log."""

    rotated: list[Path] = field(default_factory=list)   # day files written (created or extended)
    expired: list[Path] = field(default_factory=list)   # day files deleted
    missing: list[Path] = field(default_factory=list)   # log files that do not exist (yet)
    pending: list[Path] = field(default_factory=list)   # moved aside, split when the writer lets go
    dropped_lines: int = 0                               # lines already past the retention when split
    problems: list[str] = field(default_factory=list)   # what the operator has to fix


def log_files(settings: Settings) -> list[LogFile]:
    """The engine's two files: the CDR (reopened per line) and queue_log (held open)."""
    tracking = settings.tracking
    return [LogFile(Path(tracking.cdr_file)), LogFile(Path(tracking.queue_log), kept_open=True)]


def day_file(path: Path, day: date) -> Path:
    """Where the lines of ``day`` go: ``Master.csv.20261201``."""
    return path.with_name(f"{path.name}.{day:%Y%m%d}")


def moved_aside(path: Path) -> Path:
    """A rotated file that spans several days, waiting to be split: ``Master.csv.rotating``."""
    return path.with_name(f"{path.name}.rotating")


def day_files(path: Path) -> list[tuple[date, Path]]:
    """The rotated siblings of ``path`` with their day, oldest first."""
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return []
    for entry in entries:
        suffix = entry.name[len(path.name):]
        if entry.name.startswith(path.name) and (m := DAY_SUFFIX.fullmatch(suffix)):
            try:
                found.append((datetime.strptime(m[1], "%Y%m%d").date(), Path(entry.path)))
            except ValueError:
                continue
    return sorted(found)


def cdr_files(cdr_file: str | os.PathLike[str]) -> list[Path]:
    """The CDR file's lines in the order they were written: its day files oldest first, a file
    being split, then the current file (only the ones that exist). A file can vanish between
    this listing and its opening (rotated or expired meanwhile): list again. The same holds for
    queue_log."""
    path = Path(cdr_file)
    return [p for _, p in day_files(path)] + [p for p in (moved_aside(path), path) if p.exists()]


def rotate_and_expire(
    paths: Iterable[LogFile | str | os.PathLike[str]],
    retention_days: int,
    now: datetime,
    *,
    reopen: Callable[[], bool] | None = None,
    grace: float = 60.0,
) -> RetentionReport:
    """Rotate each file whose lines started before ``now``'s day into day files and delete the
    day files past ``retention_days``. A plain path is a file reopened per line (the CDR);
    ``reopen`` asks Asterisk to reopen the files it holds open (True once it has)."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    report = RetentionReport()
    rotation = _Rotation(now.date(), now.tzinfo, retention_days, reopen, grace, report)
    for item in paths:
        log_file = item if isinstance(item, LogFile) else LogFile(Path(item))
        if not log_file.path.parent.is_dir():
            report.missing.append(log_file.path)
            continue
        try:
            with _directory_lock(log_file.path.parent) as directory:
                if directory is not None:  # else another engine is rotating these files right now
                    rotation.rotate(log_file)
                    rotation.expire(log_file.path)
                    os.fsync(directory)
        except OSError as e:  # permissions, a full disk: say so, and try again at the next run
            report.problems.append(f"{log_file.path}: {e}")
    return report


async def run_retention(
    settings: Settings | Callable[[], Settings],
    interval: float = 3600.0,
    *,
    reopen: Callable[[], Awaitable[bool]] | None = None,
    grace: float = 60.0,
) -> None:
    """The engine's loop: a run at start, every ``interval`` seconds and just after each local
    midnight; file work runs in a thread. ``settings`` may be a callable for the live config;
    ``reopen`` sends AMI ``LoggerRotate`` and says whether Asterisk accepted it."""
    loop = asyncio.get_running_loop()

    async def ask_reopen() -> bool:
        assert reopen is not None
        return await reopen()

    def reopen_now() -> bool:  # called from the worker thread; the AMI lives on the loop
        future = asyncio.run_coroutine_threadsafe(ask_reopen(), loop)
        try:
            return bool(future.result(REOPEN_TIMEOUT))
        except BaseException:
            future.cancel()
            raise

    while True:
        current = settings() if callable(settings) else settings
        now = datetime.now().astimezone()
        report = await asyncio.to_thread(
            rotate_and_expire, log_files(current), current.tickets.retention_days, now,
            reopen=reopen_now if reopen else None, grace=grace,
        )
        for path in report.rotated:
            log.info("log retention: wrote %s", path)
        for path in report.expired:
            log.info("log retention: deleted %s (past %d days)", path, current.tickets.retention_days)
        for problem in report.problems:
            log.warning("log retention: %s", problem)
        await asyncio.sleep(next_run_in(now, interval, grace if report.pending else None))


def next_run_in(now: datetime, interval: float, pending_grace: float | None = None) -> float:
    """Seconds to the next run: ``interval``, but no later than just after midnight, and soon
    after ``pending_grace`` when a moved-aside file waits for its writer."""
    midnight = datetime.combine(now.date() + timedelta(days=1), day_start.min, now.tzinfo)
    wait = min(interval, (midnight - now).total_seconds() + 1.0)
    if pending_grace is not None:
        wait = min(wait, pending_grace + 1.0)
    return max(wait, 1.0)


@dataclass
class _Rotation:
    today: date
    tz: tzinfo | None
    retention_days: int
    reopen: Callable[[], bool] | None
    grace: float
    report: RetentionReport

    @property
    def yesterday(self) -> date:
        return self.today - timedelta(days=1)

    def expired(self, day: date) -> bool:
        return day + timedelta(days=self.retention_days) <= self.today

    def expire(self, path: Path) -> None:
        for day, old in day_files(path):
            if self.expired(day):
                old.unlink(missing_ok=True)
                self.report.expired.append(old)

    def rotate(self, f: LogFile) -> None:
        path, aside = f.path, moved_aside(f.path)
        if f.kept_open and self._writer_behind(path) and not self._reopen(path):
            if aside.exists():
                self.report.pending.append(aside)
            return
        if aside.exists() and not self._settle(f, aside):
            return
        try:
            st = path.stat()
        except FileNotFoundError:
            self.report.missing.append(path)
            return
        first = self._first_day(path, st) if st.st_size else self.today
        if first < self.today:
            if f.kept_open and self.reopen is None:
                self.report.problems.append(
                    f"{path} is held open by Asterisk: rotating it needs the reopen hook (AMI LoggerRotate)")
            else:
                self._move(f, st, min(first, self.yesterday), min(self._last_day(path, st), self.yesterday))
        self._check_mode(path)

    def _move(self, f: LogFile, st: os.stat_result, first: date, last: date) -> None:
        """Move the file's lines out of the way of the writer, gaplessly when we may."""
        path, target = f.path, day_file(f.path, first)
        one_day = first == last and not target.exists()
        if not one_day:
            target = moved_aside(path)
        _move_aside(path, target, st)
        if one_day:
            self.report.rotated.append(target)
        if f.kept_open and not self._reopen(path):
            if not one_day:
                self.report.pending.append(target)
        elif not one_day:
            self._settle(f, target)

    def _settle(self, f: LogFile, aside: Path) -> bool:
        """Split a moved-aside file by day once no writer can still be writing to it."""
        st = aside.stat()
        if not f.kept_open and time.time() - st.st_ctime < self.grace:
            self.report.pending.append(aside)   # a line whose open came before the move may follow
            return False
        first = min(self._first_day(aside, st), self.yesterday)
        target = day_file(f.path, first)
        if first == min(self._last_day(aside, st), self.yesterday) and not target.exists():
            os.rename(aside, target)
            self.report.rotated.append(target)
            return True
        self._split(f.path, aside, st, first)
        return True

    def _split(self, path: Path, aside: Path, st: os.stat_result, day: date) -> None:
        parts: dict[date, Path] = {}
        out: BinaryIO | None = None
        out_day: date | None = None
        try:
            with open(aside, "rb") as src:
                for line in src:
                    line_day = self._line_day(line)
                    if line_day is not None:
                        day = min(line_day, self.yesterday)
                    if self.expired(day):
                        self.report.dropped_lines += 1
                        continue
                    if day != out_day:
                        if out:
                            out.close()
                        part = parts.get(day)
                        if part is None:
                            part = parts[day] = path.with_name(f".{path.name}.{day:%Y%m%d}.part")
                            out = _create_like(part, st)
                        else:
                            out = open(part, "ab")
                        out_day = day
                    assert out is not None
                    out.write(line)
        finally:
            if out:
                out.close()
        for day, part in sorted(parts.items()):
            target = day_file(path, day)
            if target.exists():
                _append(part, target)
                part.unlink()
            else:
                _fsync(part)
                os.rename(part, target)
            self.report.rotated.append(target)
        aside.unlink()

    def _writer_behind(self, path: Path) -> bool:
        """True while a held-open file's writer still writes to the rotated file."""
        rotated = [p for _, p in day_files(path)[-1:]]
        if moved_aside(path).exists():
            rotated.append(moved_aside(path))
        if not rotated:
            return False
        newest = max(p.stat().st_mtime for p in rotated)
        try:
            current = path.stat()
        except FileNotFoundError:
            return True
        return current.st_size == 0 and newest > current.st_mtime

    def _reopen(self, path: Path) -> bool:
        ok = False
        if self.reopen is not None:
            try:
                ok = self.reopen()
            except Exception as e:  # the AMI being down must not stop the other file's rotation
                log.debug("reopen failed", exc_info=e)
        if not ok:
            self.report.problems.append(
                f"Asterisk did not reopen {path}: its lines keep landing in the rotated file "
                "(AMI LoggerRotate, logger.conf rotatestrategy = none)")
        return ok

    def _check_mode(self, path: Path) -> None:
        rotated = day_files(path)
        try:
            current, reference = path.stat().st_mode, rotated[-1][1].stat().st_mode
        except (FileNotFoundError, IndexError):
            return
        if stat.S_IMODE(current) & ~stat.S_IMODE(reference):
            self.report.problems.append(
                f"{path} has mode {stat.S_IMODE(current):04o}, laxer than its rotated files "
                f"({stat.S_IMODE(reference):04o}): Asterisk created it with its umask (set UMask=0027 for asterisk)")

    def _line_day(self, line: bytes) -> date | None:
        if m := LEADING_EPOCH.match(line):
            return datetime.fromtimestamp(int(m[1]), self.tz).date()
        stamps = STAMP.findall(line)
        if not stamps:
            return None
        try:
            return date(*map(int, stamps[-1]))
        except ValueError:
            return None

    def _mtime_day(self, st: os.stat_result) -> date:
        return datetime.fromtimestamp(st.st_mtime, self.tz).date()

    def _first_day(self, path: Path, st: os.stat_result) -> date:
        with open(path, "rb") as f:
            head = f.read(EDGE)
        for line in head.splitlines():
            if (day := self._line_day(line)) is not None:
                return day
        return self._mtime_day(st)

    def _last_day(self, path: Path, st: os.stat_result) -> date:
        with open(path, "rb") as f:
            f.seek(max(0, st.st_size - EDGE))
            tail = f.read(EDGE)
        for line in reversed(tail.splitlines()):
            if (day := self._line_day(line)) is not None:
                return day
        return self._mtime_day(st)


def _move_aside(path: Path, target: Path, st: os.stat_result) -> None:
    """Rename ``path`` to ``target``; put an empty file with its owner and mode in its place in
    the same instant when we may give it that owner, else leave that to the writer."""
    fresh = _fresh_like(path, st)
    if fresh is None:
        os.rename(path, target)
        return
    try:
        try:
            os.link(path, target)
        except OSError as e:  # hard links refused (fs.protected_hardlinks, the filesystem)
            if e.errno == errno.EEXIST:
                raise
            os.rename(path, target)
            try:
                os.link(fresh, path)
            except FileExistsError:
                pass  # the writer has already started a new file
        else:
            os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)


def _fresh_like(path: Path, st: os.stat_result) -> Path | None:
    """An empty ``.<name>.new`` with ``st``'s owner, group and mode, or None if we may not give
    it those (the writer must be able to append to it, and no one else to read it)."""
    if os.geteuid() not in (0, st.st_uid):
        return None
    fresh = path.with_name(f".{path.name}.new")
    try:
        _create_like(fresh, st, exact_owner=True).close()
    except PermissionError:
        fresh.unlink(missing_ok=True)
        return None
    return fresh


def _create_like(path: Path, st: os.stat_result, exact_owner: bool = False) -> BinaryIO:
    """A new empty file (replacing a leftover) with ``st``'s mode, and its owner and group as
    far as we may give them (all of them, or PermissionError, with ``exact_owner``)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                if exact_owner:
                    raise
                try:
                    os.fchown(fd, -1, st.st_gid)  # a group we are in: the same readers
                except PermissionError:
                    pass
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def _append(part: Path, target: Path) -> None:
    with open(target, "rb+") as out, open(part, "rb") as src:
        out.seek(0, os.SEEK_END)
        if out.tell():
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":
                out.write(b"\n")  # never glue a line onto a last line that lacks its newline
        shutil.copyfileobj(src, out)
        out.flush()
        os.fsync(out.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _directory_lock(directory: Path) -> Iterator[int | None]:
    """The directory's fd, locked, or None while another process holds it: engines sharing one
    Asterisk take turns on its files."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)
