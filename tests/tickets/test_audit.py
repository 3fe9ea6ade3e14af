"""The audit log of unmasked reads: one whole JSON line per read, private, on disk before the
data is shown, and a clear refusal when it cannot be written."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tickets.audit import AuditError, Reader, UnmaskedRead, check_reason, read_audit, unmasked_read, write_audit

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


def test_given_a_line_that_is_not_an_entry_when_read_then_value_error_names_the_line(tmp_path: Path) -> None:
    log = tmp_path / "unmasked.jsonl"
    write_audit(log, entry())
    with open(log, "a", encoding="utf-8") as f:
        f.write('{"at": "2026-12-01T00:00:00+00:00"}\n')
    with pytest.raises(ValueError, match=f"{log}:2: not an audit line"):
        read_audit(log)

