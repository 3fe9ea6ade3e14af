"""How one of Asterisk's call logs is rotated: the day files' names, the move aside (a rename,
gapless when we may give the new file its owner), the split by day, and the directory lock.
:mod:`tracking.retention` says when and which files, and why it is done this way.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("tracking.retention")  # one logger for the retention runs, as before the split

EDGE = 64 * 1024          # bytes read at either end of a file to find its first and last line's day
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



@dataclass
class Rotation:
    """One run's rotation and expiry of the files in one directory (under :func:`directory_lock`)."""

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
def directory_lock(directory: Path) -> Iterator[int | None]:
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
