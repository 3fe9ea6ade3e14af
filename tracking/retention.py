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
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, time as day_start, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tracking.rotation import (DAY_SUFFIX, EDGE, LEADING_EPOCH, STAMP, LogFile, RetentionReport, Rotation, day_file,
                               day_files, directory_lock, moved_aside)

if TYPE_CHECKING:  # the settings are handed in: no runtime import of the config layer
    from ivr.config import Settings

__all__ = [
    "DAY_SUFFIX", "EDGE", "LEADING_EPOCH", "REOPEN_TIMEOUT", "STAMP", "LogFile", "RetentionReport", "cdr_files",
    "day_file", "day_files", "log_files", "moved_aside", "next_run_in", "rotate_and_expire", "run_retention",
]

log = logging.getLogger(__name__)

REOPEN_TIMEOUT = 10.0     # seconds the engine waits for Asterisk to answer the reopen request


def log_files(settings: Settings) -> list[LogFile]:
    """The engine's two files: the CDR (reopened per line) and queue_log (held open)."""
    tracking = settings.tracking
    return [LogFile(Path(tracking.cdr_file)), LogFile(Path(tracking.queue_log), kept_open=True)]



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
    rotation = Rotation(now.date(), now.tzinfo, retention_days, reopen, grace, report)
    for item in paths:
        log_file = item if isinstance(item, LogFile) else LogFile(Path(item))
        if not log_file.path.parent.is_dir():
            report.missing.append(log_file.path)
            continue
        try:
            with directory_lock(log_file.path.parent) as directory:
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

