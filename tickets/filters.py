"""Which tickets a reader asked for: received in [since, until), then line, type, disposition.

One definition for ``ivr tickets list|export`` and the console's tickets pages; the values come
in as typed text, and a bad one is a ValueError naming the option and what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from tickets.model import DISPOSITION_LABELS, Disposition, RequestType, Ticket


@dataclass(frozen=True)
class Filters:
    """What ``list`` and ``export`` select: received in [since, until), then line, type, disposition."""

    since: datetime
    until: datetime | None
    line: str | None
    request_type: RequestType | None
    disposition: Disposition | None
    limit: int | None

    def matches(self, t: Ticket) -> bool:
        return ((self.until is None or datetime.fromisoformat(t.received).astimezone() < self.until)
                and (self.line is None or t.line == self.line)
                and (self.request_type is None or t.request_type == self.request_type.value)
                and (self.disposition is None or t.disposition == self.disposition.value))

    def describe(self) -> dict[str, Any]:
        """As the audit log records it."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat() if self.until else None,
                "line": self.line, "type": self.request_type.value if self.request_type else None,
                "disposition": self.disposition.value if self.disposition else None, "limit": self.limit}

    def summary(self) -> str:
        text = f"received since {self.since:%Y-%m-%d %H:%M}" + (f" until {self.until:%Y-%m-%d %H:%M}" if self.until else "")
        for name, value in (("line", self.line), ("type", self.request_type and self.request_type.label),
                            ("disposition", self.disposition and self.disposition.value)):
            if value:
                text += f", {name} {value}"
        return text


def parse_filters(since: str | None, until: str | None, line: str | None, request_type: str | None,
                  disposition: str | None, limit: str | None, *, option: str = "--") -> Filters:
    """Filters from typed values (None or '': not given; ``since`` defaults to today 00:00);
    ValueError names ``option`` + the field (``--since`` on the command line)."""
    if not since:
        start = datetime.combine(date.today(), time()).astimezone()
    else:
        start = parse_when(since, f"{option}since", end_of_day=False)
    end = None if not until else parse_when(until, f"{option}until", end_of_day=True)
    if end is not None and end <= start:
        raise ValueError(f"{option}until {until} is not after {option}since {start:%Y-%m-%d %H:%M}")
    number = line.strip() if line else None
    if number is not None and not re.fullmatch(r"[0-9]+", number):
        raise ValueError(f"bad {option}line {line!r}: expected the dialed number, digits only (12345, 12366, 3022782)")
    kind = RequestType.parse(request_type) if request_type else None
    count = None
    if limit:
        if not re.fullmatch(r"[0-9]+", limit.strip()) or int(limit) < 1:
            raise ValueError(f"bad {option}limit {limit!r}: expected a whole number of tickets, 1 or more")
        count = int(limit)
    return Filters(start, end, number, kind, parse_disposition(disposition) if disposition else None, count)


def parse_when(text: str, option: str, *, end_of_day: bool) -> datetime:
    """A date (its local midnight; with ``end_of_day`` the next one) or a time (naive = local)."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1) if end_of_day else day, time()).astimezone()
    try:
        return datetime.fromisoformat(text).astimezone()
    except ValueError:
        raise ValueError(f"bad {option} {text!r}: expected a date (2026-12-01) or a time "
                         "(2026-12-01T08:30, 2026-12-01T08:30+08:00)") from None


def parse_disposition(text: str) -> Disposition:
    for d in Disposition:
        if text.strip().lower() in (d.value, DISPOSITION_LABELS[d]):
            return d
    accepted = ", ".join(f"{d.value} ({DISPOSITION_LABELS[d]})" for d in Disposition)
    raise ValueError(f"unknown disposition {text!r} (one of {accepted})")
