"""Tickets as flat rows: the CSV columns of ``ivr tickets export`` and the labels staff read.

The column order is an interface (spreadsheets and import scripts address columns by position
and name), so it is defined once, here, and only ever extended at the end. Rows are built from
tickets as already viewed (:meth:`tickets.model.Ticket.view`): masking is decided before a row
exists, never here.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import AsyncIterable, AsyncIterator, Callable, Iterable, TextIO

from tickets.model import DISPOSITION_LABELS, REQUEST_LABELS, Deadline, Disposition, RequestType, Ticket, Transfer

# Excel decides a CSV file's encoding from its first bytes: without the UTF-8 byte order mark it
# reads the file in the system's ANSI code page (GBK on a Chinese Windows) and every Mandarin
# label and line title turns into mojibake. With the BOM it reads UTF-8; other tools skip it.
ENCODING = "utf-8-sig"

# A cell that starts with one of these is a formula to Excel (CSV injection); caller IDs come
# from the network, so every text cell that could start with one is quoted with a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def local_time(iso: str) -> str:
    """An ISO time as the platform's local wall clock, ``2026-12-01 17:30:05`` ('' stays '')."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def type_label(value: str) -> str:
    """``complaint`` → 投诉; a request type not (yet) set → ''."""
    try:
        return REQUEST_LABELS[RequestType(value)]
    except ValueError:
        return value


def disposition_label(value: str) -> str:
    """``abandoned_queue`` → 排队中放弃; a call still running → ''."""
    try:
        return DISPOSITION_LABELS[Disposition(value)]
    except ValueError:
        return value


def deadline_due(deadline: Deadline | None) -> str:
    """A date stays a date; a crisis deadline (a time) is shown on the local clock."""
    if deadline is None:
        return ""
    return deadline.due if len(deadline.due) == 10 else local_time(deadline.due)[:16]


def transfer_text(t: Transfer) -> str:
    """``subcenter 12366 via tax: NOANSWER (cause 17) → queue general``."""
    text = f"{t.kind} {t.number}" + (f" via {t.target}" if t.target else "") + (" (three-party)" if t.three_party else "")
    text += f": {t.result or 'no result'}" + (f" (cause {t.cause})" if t.cause else "")
    return text + (f" → {t.then}" if t.then else "")


def session_text(session: str, topic: str = "") -> str:
    """A leader session (领导接听) as staff read it: ``汛后恢复重建（flood-recovery-1201）``; its id
    alone once config/sessions.yaml no longer holds it."""
    return f"{topic}（{session}）" if topic else session


def _number(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"


Column = tuple[str, Callable[[Ticket], str]]

COLUMNS: tuple[Column, ...] = (
    ("number", lambda t: t.number),
    ("received", lambda t: local_time(t.received)),
    ("line", lambda t: t.line),
    ("line_mode", lambda t: t.line_mode),
    ("line_title", lambda t: t.line_title),
    ("caller", lambda t: t.caller),
    ("request_type", lambda t: t.request_type),
    ("request_type_label", lambda t: type_label(t.request_type)),
    ("request_type_source", lambda t: t.request_type_source),
    ("disposition", lambda t: t.disposition),
    ("disposition_label", lambda t: disposition_label(t.disposition)),
    ("after_transfer", lambda t: t.after_transfer),
    ("skill", lambda t: t.skill),
    ("queue", lambda t: t.queue),
    ("queued", lambda t: local_time(t.queued)),
    ("wait_seconds", lambda t: _number(t.wait_seconds)),
    ("agent", lambda t: t.agent),
    ("answered", lambda t: local_time(t.answered)),
    ("talk_seconds", lambda t: _number(t.talk_seconds)),
    ("ended", lambda t: local_time(t.ended)),
    ("hangup_by", lambda t: t.hangup_by),
    ("hangup_cause", lambda t: t.hangup_cause),
    ("transfers", lambda t: "; ".join(transfer_text(x) for x in t.transfers)),
    ("emergency_linked", lambda t: "yes" if t.emergency_linked else ""),
    ("satisfaction", lambda t: _number(t.satisfaction)),
    ("satisfaction_status", lambda t: t.satisfaction_status),
    ("deadline", lambda t: deadline_due(t.deadline)),
    ("deadline_rule", lambda t: t.deadline.rule if t.deadline else ""),
    ("deadline_provisional", lambda t: "yes" if t.deadline and t.deadline.provisional else ""),
    ("repeat_of", lambda t: " ".join(t.repeat_of)),
    ("ivr_flow", lambda t: t.ivr.flow),
    ("ivr_keys", lambda t: " ".join(t.ivr.keys)),
    ("ivr_route", lambda t: t.ivr.route + (" (fallback)" if t.ivr.fallback else "")),
    ("status", lambda t: t.status),
    ("closed_by", lambda t: t.closed_by),
    ("linkedid", lambda t: t.linkedid),
    ("out_of_scope", lambda t: f"{t.out_of_scope.title or t.out_of_scope.matter} ({t.out_of_scope.by})" if t.out_of_scope else ""),
)
HEADER = tuple(name for name, _value in COLUMNS)


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(ticket: Ticket) -> list[str]:
    return [_cell(value(ticket)) for _name, value in COLUMNS]


def write_csv(out: TextIO, tickets: Iterable[Ticket]) -> int:
    """The header and one row per ticket to ``out`` (opened with ``newline=""`` and
    :data:`ENCODING`); how many rows were written."""
    writer = csv.writer(out)
    writer.writerow(HEADER)
    n = 0
    for ticket in tickets:
        writer.writerow(row(ticket))
        n += 1
    return n


async def csv_chunks(batches: AsyncIterable[Iterable[Ticket]]) -> AsyncIterator[str]:
    """Each batch's rows as one chunk of CSV text, the header in front of the first (an export
    streamed as it is read, that shows nothing, not even the header, until its first read has
    come back; the byte order mark is the writer's, see :data:`ENCODING`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    async for batch in batches:
        writer.writerows(row(t) for t in batch)
        if out.tell():
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue()  # no rows at all: the header alone
