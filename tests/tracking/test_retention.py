"""Retention of Asterisk's CDR file and queue_log on real files: daily rotation into day files
with nothing lost or cut while a writer appends (O_APPEND, per line like cdr_custom or held open
like queue_log), expiry at the boundary day, modes kept, and the order readers get them in."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

import tracking.retention as retention
from ivr.config import Settings, TicketSettings, TrackingSettings
from testbed.calls import until
from tracking.retention import LogFile, cdr_files, next_run_in, rotate_and_expire, run_retention

DEC1 = date(2026, 12, 1)
AFTER_MIDNIGHT = datetime(2026, 12, 2, 0, 0, 30)  # the first run on 2 December
CDR_LINE = re.compile(r'"c(\d+)","c\d+","13900000001","12345",.*"(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d","\d+",.*"",""\n')
QUEUE_LINE = re.compile(r"\d{10}\|q(\d+)\|q-general\|NONE\|ENTERQUEUE\|\|13900000001\|1\n")


def cdr_line(n: int, day: date, at: time = time(12)) -> bytes:
    """A CDR line in asterisk-conf/cdr_custom.conf's shape (linkedid first; start, answer, end)."""
    start = f"{day} {at:%H:%M:%S}"
    end = (datetime.combine(day, at) + timedelta(seconds=9)).strftime("%Y-%m-%d %H:%M:%S")
    return (f'"c{n}","c{n}","13900000001","12345","from-pstn","PJSIP/pstn-{n:08x}","PJSIP/agent1001",'
            f'"Queue","{start}","{start}","{end}","9","9","ANSWERED","12345","queue","consult","general","",""\n').encode()


def queue_line(n: int, day: date, at: time = time(12)) -> bytes:
    epoch = int(datetime.combine(day, at).timestamp())
    return f"{epoch}|q{n}|q-general|NONE|ENTERQUEUE||13900000001|1\n".encode()


def write(path: Path, lines: list[bytes], mode: int = 0o640) -> Path:
    path.write_bytes(b"".join(lines))
    path.chmod(mode)
    return path


def lines_of(paths: list[Path]) -> list[bytes]:
    return [line for p in paths for line in p.read_bytes().splitlines(keepends=True)]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cdr(tmp_path: Path) -> Path:
    (tmp_path / "cdr-custom").mkdir()
    return tmp_path / "cdr-custom" / "Master.csv"


# --- rotation -------------------------------------------------------------------------------

def test_given_yesterdays_cdr_when_the_first_run_after_midnight_comes_then_a_day_file_holds_it_and_an_empty_file_with_its_mode_takes_its_place(  # noqa: E501 (a test name is its sentence)
    cdr: Path,
) -> None:
    lines = [cdr_line(1, DEC1, time(9)), cdr_line(2, DEC1, time(23, 59, 50))]
    write(cdr, lines)

    report = rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)

    day = cdr.with_name("Master.csv.20261201")
    assert report.rotated == [day] and report.problems == []
    assert day.read_bytes() == b"".join(lines)
    assert cdr.read_bytes() == b"" and mode_of(cdr) == 0o640 and mode_of(day) == 0o640
    assert sorted(p.name for p in cdr.parent.iterdir()) == ["Master.csv", "Master.csv.20261201"]


def test_given_we_may_not_give_the_new_file_asterisks_owner_when_rotating_then_the_file_is_renamed_and_asterisk_makes_the_next_one(
    cdr: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(cdr, [cdr_line(1, DEC1)])
    monkeypatch.setattr(retention.os, "geteuid", lambda: cdr.stat().st_uid + 1)

    report = rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)

    assert report.rotated == [cdr.with_name("Master.csv.20261201")]
    assert not cdr.exists() and mode_of(cdr.with_name("Master.csv.20261201")) == 0o640
    assert not list(cdr.parent.glob(".*"))


def test_given_asterisk_recreated_the_file_with_its_umask_when_a_run_comes_then_the_laxer_mode_is_reported(cdr: Path) -> None:
    write(cdr.with_name("Master.csv.20261201"), [cdr_line(1, DEC1)])
    write(cdr, [cdr_line(2, DEC1 + timedelta(days=1))], mode=0o644)

    report = rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)

    assert len(report.problems) == 1 and "0644" in report.problems[0] and "UMask=0027" in report.problems[0]


def test_given_lines_written_after_midnight_before_the_run_when_rotating_then_they_go_with_the_day_that_ended(cdr: Path) -> None:
    lines = [cdr_line(1, DEC1, time(23, 59)), cdr_line(2, DEC1 + timedelta(days=1), time(0, 0, 10))]
    write(cdr, lines)

    rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)

    assert cdr.with_name("Master.csv.20261201").read_bytes() == b"".join(lines)


def test_given_a_file_started_today_when_a_run_comes_then_it_is_left_alone(cdr: Path) -> None:
    write(cdr, [cdr_line(1, AFTER_MIDNIGHT.date(), time(0, 0, 5))])

    report = rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)

    assert report.rotated == [] and cdr_files(cdr) == [cdr]


def test_given_a_file_spanning_days_when_rotating_then_it_is_split_by_day_after_the_grace_and_lines_past_retention_are_not_copied(
    cdr: Path,
) -> None:
    ancient, nov29 = cdr_line(1, date(2026, 10, 1)), cdr_line(2, date(2026, 11, 29))
    dec1 = [cdr_line(3, DEC1), cdr_line(4, DEC1, time(13))]
    write(cdr, [ancient, nov29, *dec1])

    first = rotate_and_expire([cdr], 30, AFTER_MIDNIGHT)
    aside = cdr.with_name("Master.csv.rotating")
    assert first.pending == [aside] and first.rotated == [] and cdr.read_bytes() == b""
    assert cdr_files(cdr) == [aside, cdr]

    second = rotate_and_expire([cdr], 30, AFTER_MIDNIGHT, grace=0)

    assert second.dropped_lines == 1 and not aside.exists()
    assert second.rotated == [cdr.with_name("Master.csv.20261129"), cdr.with_name("Master.csv.20261201")]
    assert lines_of(cdr_files(cdr)) == [nov29, *dec1]
    assert {mode_of(p) for p in cdr_files(cdr)} == {0o640}
    assert not list(cdr.parent.glob(".*"))


# --- concurrent writers: nothing lost, nothing cut ----------------------------------------------

class Writer(threading.Thread):
    """Appends lines with O_APPEND like Asterisk: per line (cdr_custom) or on one held fd
    (queue_log) that it reopens when asked (LoggerRotate). A line is stamped with the day it is
    written on: ``new_day`` waits for the line being written, never for a rotation."""

    def __init__(self, path: Path, kept_open: bool, line: Callable[[int, date], bytes]) -> None:
        super().__init__(daemon=True)
        self.path, self.kept_open, self.line = path, kept_open, line
        self.day = DEC1
        self.clock = threading.Lock()
        self.written: list[bytes] = []
        self.stop = threading.Event()
        self.reopen_asked, self.reopened = threading.Event(), threading.Event()

    def open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def run(self) -> None:
        fd = self.open() if self.kept_open else -1
        n = 0
        while not self.stop.is_set():
            if self.kept_open and self.reopen_asked.is_set():
                os.close(fd)
                fd = self.open()
                self.reopen_asked.clear()
                self.reopened.set()
            with self.clock:
                line = self.line(n, self.day)
                if self.kept_open:
                    os.write(fd, line)
                else:
                    one = self.open()
                    os.write(one, line)
                    os.close(one)
            self.written.append(line)
            n += 1
        if self.kept_open:
            os.close(fd)

    def new_day(self, day: date) -> None:
        with self.clock:
            self.day = day

    def reopen(self) -> bool:
        self.reopened.clear()
        self.reopen_asked.set()
        return self.reopened.wait(5)


@pytest.fixture(params=["gapless", "links refused", "not the owner"])
def move_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    real_link = os.link
    if request.param == "links refused":  # fs.protected_hardlinks for a file of another user
        def link(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
            if not Path(src).name.startswith("."):
                raise PermissionError(errno.EPERM, "Operation not permitted")
            real_link(src, dst)
        monkeypatch.setattr(retention.os, "link", link)
    if request.param == "not the owner":
        monkeypatch.setattr(retention.os, "geteuid", lambda: os.getuid() + 1)
    yield request.param


@pytest.mark.parametrize("kind", ["cdr", "queue_log"])
def test_given_a_writer_appending_while_the_engine_rotates_day_after_day_then_every_line_is_in_exactly_one_file_and_none_is_cut(
    tmp_path: Path, kind: str, move_mode: str,
) -> None:
    kept_open = kind == "queue_log"
    path = tmp_path / ("queue_log" if kept_open else "Master.csv")
    writer = Writer(path, kept_open, queue_line if kept_open else cdr_line)
    writer.start()
    try:
        for k in range(1, 25):
            assert until_sync(lambda: path.exists() and path.stat().st_size > 0)
            writer.new_day(DEC1 + timedelta(days=k))  # midnight, then the engine's run
            report = rotate_and_expire([LogFile(path, kept_open)], 180, datetime.combine(writer.day, time(0, 0, 1)),
                                       reopen=writer.reopen)
            assert report.rotated == [path.with_name(f"{path.name}.{DEC1 + timedelta(days=k - 1):%Y%m%d}")]
            assert not [p for p in report.problems if "did not reopen" in p]
    finally:
        writer.stop.set()
        writer.join()
    rotate_and_expire([LogFile(path, kept_open)], 180, datetime.combine(writer.day + timedelta(days=1), time(0, 0, 1)),
                      reopen=lambda: True, grace=0)  # the writer has stopped: nothing holds the file

    files = cdr_files(path)
    found = lines_of(files)
    assert Counter(found) == Counter(writer.written)
    shape = QUEUE_LINE if kept_open else CDR_LINE
    assert all(shape.fullmatch(line.decode()) for line in found)
    assert len(writer.written) > 24 and not path.with_name(f"{path.name}.rotating").exists()


def until_sync(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """A bounded wait in a plain test (the writer thread makes progress meanwhile)."""
    return asyncio.run(until(condition, timeout=timeout, interval=0.001))


# --- queue_log: held open, needs Asterisk to reopen it -----------------------------------------

def test_given_queue_log_without_a_reopen_hook_when_a_run_comes_then_it_is_left_whole_and_the_operator_told(tmp_path: Path) -> None:
    queue_log = write(tmp_path / "queue_log", [queue_line(1, DEC1)])

    report = rotate_and_expire([LogFile(queue_log, kept_open=True)], 180, AFTER_MIDNIGHT)

    assert report.rotated == [] and cdr_files(queue_log) == [queue_log]
    assert report.problems and "reopen" in report.problems[0]


def test_given_asterisk_did_not_reopen_queue_log_when_the_next_run_comes_then_it_is_asked_again(tmp_path: Path) -> None:
    queue_log = write(tmp_path / "queue_log", [queue_line(1, DEC1)])
    answers = [False, True]
    asked: list[bool] = []

    def reopen() -> bool:
        asked.append(True)
        return answers.pop(0)

    first = rotate_and_expire([LogFile(queue_log, kept_open=True)], 180, AFTER_MIDNIGHT, reopen=reopen)
    day = tmp_path / "queue_log.20261201"
    with open(day, "ab") as still_held:  # Asterisk goes on writing to the file it holds
        still_held.write(queue_line(2, DEC1 + timedelta(days=1)))
    os.utime(queue_log, (0, 0))
    second = rotate_and_expire([LogFile(queue_log, kept_open=True)], 180, AFTER_MIDNIGHT + timedelta(hours=1), reopen=reopen)

    assert first.rotated == [day] and "did not reopen" in first.problems[0]
    assert len(asked) == 2 and second.problems == []


# --- expiry -------------------------------------------------------------------------------------

def test_given_day_files_around_the_retention_boundary_when_a_run_comes_then_only_those_n_days_old_are_deleted(cdr: Path) -> None:
    for name in ("Master.csv.20260604", "Master.csv.20260605", "Master.csv.20260606", "Master.csv.20261201"):
        write(cdr.with_name(name), [cdr_line(1, DEC1)])

    report = rotate_and_expire([cdr], 180, AFTER_MIDNIGHT)  # 2026-06-05 + 180 days = 2026-12-02

    assert [p.name for p in report.expired] == ["Master.csv.20260604", "Master.csv.20260605"]
    assert [p.name for p in cdr_files(cdr)] == ["Master.csv.20260606", "Master.csv.20261201"]
    assert report.missing == [cdr]


def test_given_retention_of_one_day_when_the_day_ends_then_its_lines_are_gone_at_the_first_run(cdr: Path) -> None:
    write(cdr, [cdr_line(1, DEC1)])

    report = rotate_and_expire([cdr], 1, AFTER_MIDNIGHT)

    assert report.expired == [cdr.with_name("Master.csv.20261201")] and cdr_files(cdr) == [cdr]


def test_given_missing_files_and_directories_when_a_run_comes_then_they_are_reported_and_nothing_fails(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-such-dir" / "Master.csv"
    absent = tmp_path / "queue_log"

    report = rotate_and_expire([nowhere, LogFile(absent, kept_open=True)], 180, AFTER_MIDNIGHT)

    assert report.missing == [nowhere, absent] and report.problems == [] and cdr_files(nowhere) == []


def test_given_a_retention_below_one_day_when_asked_then_it_is_refused(cdr: Path) -> None:
    with pytest.raises(ValueError):
        rotate_and_expire([cdr], 0, AFTER_MIDNIGHT)


# --- what the CDR reader sees -------------------------------------------------------------------

def test_given_day_files_a_file_being_split_and_strangers_when_listing_then_the_cdr_files_come_oldest_first_with_the_current_last(
    cdr: Path,
) -> None:
    for name in ("Master.csv.20261201", "Master.csv", "Master.csv.rotating", "Master.csv.20251231", "Master.csv.20261130",
                 "Master.csv.bak", "Master.csv.2026120", "Master.csv.20261301", ".Master.csv.20261201.part",
                 "Other.csv.20261201", "Master.csv.20261201.gz"):
        (cdr.parent / name).write_bytes(b"")

    assert [p.name for p in cdr_files(str(cdr))] == [
        "Master.csv.20251231", "Master.csv.20261130", "Master.csv.20261201", "Master.csv.rotating", "Master.csv"]


# --- the engine's loop -------------------------------------------------------------------------

@pytest.mark.parametrize("now, pending, expected", [
    (datetime(2026, 12, 1, 10, 0), False, 3600.0),
    (datetime(2026, 12, 1, 23, 59), False, 61.0),
    (datetime(2026, 12, 1, 10, 0), True, 61.0),
])
def test_given_the_clock_when_planning_the_next_run_then_it_comes_hourly_just_after_midnight_and_soon_when_a_split_waits(
    now: datetime, pending: bool, expected: float,
) -> None:
    assert next_run_in(now, 3600.0, 60.0 if pending else None) == expected


async def test_given_the_engine_loop_when_it_starts_then_both_files_are_rotated_and_queue_log_reopened_through_the_hook(
    tmp_path: Path,
) -> None:
    yesterday = date.today() - timedelta(days=1)
    cdr = write(tmp_path / "Master.csv", [cdr_line(1, yesterday)])
    queue_log = write(tmp_path / "queue_log", [queue_line(1, yesterday)])
    settings = Settings(tracking=TrackingSettings(cdr_file=str(cdr), queue_log=str(queue_log)),
                        tickets=TicketSettings(retention_days=30))
    reopened = asyncio.Event()

    async def logger_rotate() -> bool:  # what the AMI adapter does: Action LoggerRotate
        reopened.set()
        return True

    loop = asyncio.create_task(run_retention(lambda: settings, reopen=logger_rotate))
    try:
        await until(lambda: len(cdr_files(cdr)) == 2 and len(cdr_files(queue_log)) == 2, timeout=5)
    finally:
        loop.cancel()
    assert reopened.is_set()
    assert cdr_files(queue_log)[0].name == f"queue_log.{yesterday:%Y%m%d}"
