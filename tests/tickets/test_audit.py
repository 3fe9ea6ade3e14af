"""The audit log of unmasked reads: one whole JSON line per read, private, on disk before the
data is shown, and a clear refusal when it cannot be written."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from testbed.console import LINE_BREAKERS
from tickets.audit import (UNREADABLE, AuditError, Reader, UnmaskedRead, check_reason, read_audit, unmasked_read,
                           write_audit)

READER = Reader(user="ivr-admin", sudo_user="wang")


def entry(reason: str = "回访", **what: object) -> UnmaskedRead:
    return unmasked_read(READER, "tickets list", dict(what), tickets=3, callers=2, reason=reason)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read what is created: the log must stay private anyway."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_given_a_read_when_its_entry_is_made_then_it_carries_utc_time_reader_what_counts_and_reason() -> None:
    at = datetime(2026, 12, 1, 17, 30, 5, tzinfo=timezone(timedelta(hours=8)))
    made = unmasked_read(READER, "tickets show", {"number": "20261201-12345-00017"}, tickets=1, callers=1,
                         reason="  callback for 投诉  ", now=at)
    assert made == UnmaskedRead(at="2026-12-01T09:30:05+00:00", user="ivr-admin", sudo_user="wang",
                                command="tickets show", what={"number": "20261201-12345-00017"}, tickets=1,
                                callers=1, reason="callback for 投诉")


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", None])
def test_given_no_reason_when_checked_then_refused(reason: str | None) -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        check_reason(reason)
    if reason is not None:
        with pytest.raises(ValueError):
            entry(reason)


def test_given_entries_when_written_then_each_is_one_line_read_back_in_order(tmp_path: Path) -> None:
    log = tmp_path / "audit" / "unmasked.jsonl"
    first, second = entry("第一\n行", line="12345"), entry("second", line=None)
    write_audit(log, first)
    write_audit(log, second)
    assert log.read_text(encoding="utf-8").count("\n") == 2  # a newline in a reason stays escaped
    assert read_audit(log) == [first, second]


def test_given_a_new_log_when_written_with_an_open_umask_then_file_0600_and_directory_0700(
    tmp_path: Path, open_umask: None,
) -> None:
    log = tmp_path / "state" / "audit" / "unmasked.jsonl"
    write_audit(log, entry())
    assert os.stat(log).st_mode & 0o777 == 0o600
    assert os.stat(log.parent).st_mode & 0o777 == 0o700


def test_given_many_writers_at_once_when_they_append_then_no_line_is_torn(tmp_path: Path) -> None:
    log = tmp_path / "unmasked.jsonl"
    big = "x" * 200_000  # far past any stdio buffer: a chunked write would interleave

    def writer(n: int) -> None:
        for i in range(20):
            write_audit(log, entry(f"{n}-{i} {big}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reasons = sorted(e.reason.split()[0] for e in read_audit(log))
    assert reasons == sorted(f"{n}-{i}" for n in range(4) for i in range(20))


def test_given_a_log_path_that_is_a_directory_when_written_then_audit_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=f"cannot open the audit log {tmp_path}"):
        write_audit(tmp_path, entry())


def test_given_a_full_disk_when_written_then_audit_error(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.fail("/dev/full is missing: this test needs a Linux device that fails every write")
    with pytest.raises(AuditError, match="cannot write the audit log /dev/full"):
        write_audit(Path("/dev/full"), entry())


def test_given_a_parent_that_is_a_file_when_written_then_audit_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(AuditError):
        write_audit(tmp_path / "state" / "audit" / "unmasked.jsonl", entry())


def test_given_no_log_yet_when_read_then_empty(tmp_path: Path) -> None:
    assert read_audit(tmp_path / "missing.jsonl") == []


HOSTILE = [*LINE_BREAKERS, "x\ny", "x\x1d\x1ey", "x\u000by\u000cz"]


@pytest.mark.parametrize("text", HOSTILE)
def test_given_line_breaking_characters_in_any_field_when_written_then_one_ascii_line_reads_back_whole(
        tmp_path: Path, text: str) -> None:
    log = tmp_path / "unmasked.jsonl"
    hostile = unmasked_read(Reader(user=text, sudo_user=text), text, {text: text}, tickets=1, callers=1, reason=text)
    before, after = entry("before"), entry("after")  # made once: an entry carries the time it was made
    for each in (before, hostile, after):
        write_audit(log, each)
    raw = log.read_bytes()
    assert raw.count(b"\n") == 3 and raw.isascii()
    assert len(raw.decode().splitlines()) == 3  # not even str.splitlines() finds another line end
    assert read_audit(log) == [before, hostile, after]


def test_given_a_line_written_raw_with_a_line_separator_when_read_then_it_stays_one_entry(tmp_path: Path) -> None:
    log = tmp_path / "unmasked.jsonl"  # as the old writer (ensure_ascii=False) left it
    log.write_bytes(b'{"at": "2026-12-01T00:00:00+00:00", "user": "x\xe2\x80\xa8y@console", "sudo_user": "", '
                    b'"command": "console sign-in", "what": {}, "tickets": 0, "callers": 0, "reason": "r\xc2\x85"}\n')
    write_audit(log, entry("after"))
    assert [e.user for e in read_audit(log)] == ["x\u2028y@console", READER.user]


def test_given_broken_lines_when_read_then_each_shows_as_unreadable_and_later_lines_still_show(tmp_path: Path) -> None:
    log = tmp_path / "unmasked.jsonl"
    write_audit(log, entry("first"))
    with open(log, "ab") as f:
        f.write(b'{"at": "2026-12-01T00:00:00+00:00"}\n')  # JSON, not an entry
        f.write(b'{"at": "2026-12-01T00:\n')  # cut short
        f.write(b'\xff\xfe not utf-8\n[1, 2]\n"text"\n')
    write_audit(log, entry("last"))
    entries = read_audit(log)
    assert [e.reason for e in entries] == ["first", "", "", "", "", "", "last"]
    assert [e.what["line"] for e in entries if e.command == UNREADABLE] == [2, 3, 4, 5, 6]
