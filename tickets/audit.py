"""Who read caller numbers unmasked, when, what and why (数据脱敏: authorised access, 001 §11).

Caller numbers are masked wherever a role does not need them. A person who does need them (a
supervisor calling a citizen back) asks explicitly and gives a reason; that request is written
here *before* anything unmasked is shown: if the line cannot be written, nothing is shown.

The log is JSON lines, one per unmasked read, appended with ``O_APPEND`` in one ``write`` so
readers and concurrent writers never see half a line; the file is created ``0600``. Lines are
pure ASCII (``ensure_ascii``: every control, U+2028/U+2029/U+0085 escaped), so no content a
caller, a sign-in form or a staff member types can split a line; lines are read by splitting on
``\n`` alone, and a line that does not parse is shown as such (:data:`UNREADABLE`), never
hiding the lines after it. A line
holds no caller number itself, only what was asked (filters or a ticket number) and how many
tickets and callers were shown. No I/O beyond that one file: the CLI and the web console
write it, each naming its reader its own way. The console also records its other actions that
must be answerable for (sign-ins, flow publishes, number-plan changes: :func:`action`); those
lines show no caller either.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class AuditError(Exception):
    """The audit line could not be written: show nothing unmasked."""


@dataclass(frozen=True)
class Reader:
    """Who asked: the OS user for the CLI (and the user behind ``sudo``), a login for a console."""

    user: str
    sudo_user: str = ""


@dataclass(frozen=True)
class AuditEntry:
    """One audit line: an unmasked read (``tickets``/``callers`` shown) or another action."""

    at: str  # UTC, ISO 8601
    user: str
    sudo_user: str
    command: str  # "tickets list", "tickets show", …
    what: dict[str, Any] = field(default_factory=dict)  # the filters, or {"number": …}
    tickets: int = 0  # tickets shown
    callers: int = 0  # distinct caller numbers shown
    reason: str = ""


UnmaskedRead = AuditEntry  # the name the CLI's readers know it by


def check_reason(reason: str | None) -> str:
    """The reason as it goes into the log; ValueError when there is none to write."""
    text = (reason or "").strip()
    if not text:
        raise ValueError("an unmasked read needs a reason (who is called back, which case)")
    return text


def unmasked_read(reader: Reader, command: str, what: dict[str, Any], *, tickets: int, callers: int,
                  reason: str, now: datetime | None = None) -> AuditEntry:
    """The audit line for a read about to be shown (``now``: for tests; default the clock)."""
    return AuditEntry(at=_utc(now), user=reader.user, sudo_user=reader.sudo_user, command=command, what=dict(what),
                      tickets=tickets, callers=callers, reason=check_reason(reason))


def action(reader: Reader, command: str, what: dict[str, Any], *, reason: str = "",
           now: datetime | None = None) -> AuditEntry:
    """The audit line of an action that shows no caller (a sign-in, a flow publish): no reason required."""
    return AuditEntry(at=_utc(now), user=reader.user, sudo_user=reader.sudo_user, command=command, what=dict(what),
                      reason=reason.strip())


def _utc(now: datetime | None) -> str:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")


def write_audit(path: Path, entry: AuditEntry) -> None:
    """Append ``entry`` as one line, on disk before this returns; AuditError if it is not."""
    line = (json.dumps(asdict(entry), ensure_ascii=True, sort_keys=True) + "\n").encode("ascii")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditError(f"cannot open the audit log {path}: {exc.strerror or exc}") from None
    try:
        written = os.write(fd, line)  # one append: whole, or an error
        if written != len(line):
            raise AuditError(f"the audit log {path} took {written} of {len(line)} bytes (disk full?)")
        os.fsync(fd)  # the line outlives a crash before the data is shown
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_audit(path: Path) -> list[AuditEntry]:
    """Every line of the log, oldest first ([] when there is none yet). A line that is not an
    audit line (edited by hand, cut by a full disk) comes back as an :data:`UNREADABLE` entry
    naming its line number, so it is seen and the lines after it still are."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for n, raw in enumerate(data.split(b"\n"), start=1):  # never str.splitlines(): U+2028 is no line end
        if raw.strip():
            entries.append(_parse(raw, n))
    return entries


UNREADABLE = "unreadable line"  # the command of an entry that stands for a line that does not parse


def _parse(raw: bytes, n: int) -> AuditEntry:
    try:
        fields = json.loads(raw.decode("utf-8"))
        if isinstance(fields, dict):
            entry = AuditEntry(**fields)
            if isinstance(entry.what, dict) and all(isinstance(v, str) for v in (entry.at, entry.user, entry.command)):
                return entry
    except (ValueError, TypeError):
        pass
    return AuditEntry(at="", user="", sudo_user="", command=UNREADABLE, what={"line": n, "bytes": len(raw)})
