"""The 12345 workflow after the call (001 §9): what a department may write back, and when.

受理 (accepted, the platform) → 已派单 (dispatched) / 办理中 (handling) → 已办结 (closed, with the
reply) or 退回 (returned, with a reason: back to the hotline for re-dispatch); 延期 (extend) moves
the deadline without changing the status. The table :data:`TRANSITIONS` is the whole rule; a
department may write only to a ticket assigned to it (``Ticket.department`` is its title), and
not to one it returned itself (the hotline re-dispatches: another department, once assigned,
picks it up from ``returned``). A closed ticket stays closed: only the hotline reopens.

Overdue (超期): a ticket whose case is still open after its deadline (:func:`overdue`).

Pure rules, no I/O: the signed API and its Redis work are :mod:`tickets.writeback`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.core.calendar import HolidayCalendar
from tickets.model import CLOSED_STATUSES, Deadline, Ticket

STATUS_LABELS = {
    "accepted": "已受理",
    "dispatched": "已派单",
    "handling": "办理中",
    "replied": "已答复",
    "closed": "已办结",
    "returned": "已退回",
}
"""Every workflow status (the names ivr/flows/progress.py speaks, plus ``returned``) and its label."""

EventKind = Literal["dispatched", "handling", "closed", "returned", "extend"]

TRANSITIONS: dict[str, frozenset[str]] = {
    "dispatched": frozenset({"accepted", "dispatched", "returned"}),  # a re-dispatch to another unit too
    "handling": frozenset({"accepted", "dispatched", "returned"}),
    "closed": frozenset({"accepted", "dispatched", "handling", "replied"}),
    "returned": frozenset({"accepted", "dispatched", "handling"}),
    "extend": frozenset({"accepted", "dispatched", "handling"}),
}
"""Event → the statuses it may follow. ``returned`` is left only by a department newly assigned."""

EVENT_LABELS = {"dispatched": "已派单", "handling": "办理中", "closed": "已办结", "returned": "退回", "extend": "延期"}
EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MAX_BODY = 16 * 1024  # bytes: a reply text of 2000 characters in UTF-8 fits well


def _clean(text: str) -> str:
    """No control or format characters (they would split lines or hide text); line breaks in a
    reply are allowed, written as plain ``\\n``."""
    text = text.strip()
    for ch in text:
        if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"control character U+{ord(ch):04X} not allowed")
    return text


class DeptEvent(BaseModel):
    """One write-back as a department sends it (the JSON body): known fields only, bounded text."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=EVENT_ID, description="the department's own event id: idempotency key")
    event: EventKind
    unit: str = Field("", max_length=60, description="dispatched: the unit it went to (承办科室/街道)")
    text: str = Field("", max_length=2000, description="closed: the reply; returned, extend: the reason")
    due: str = Field("", max_length=32, description="extend: the new deadline (ISO date; crisis: ISO time)")

    @field_validator("unit", "text", "due")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        return _clean(value)

    @field_validator("unit")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("one line")
        return value

    @model_validator(mode="after")
    def _required(self) -> "DeptEvent":
        needs = {"dispatched": ("unit",), "closed": ("text",), "returned": ("text",), "extend": ("due", "text")}
        missing = [name for name in needs.get(self.event, ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"{self.event} needs {', '.join(missing)}")
        unused = [name for name in ("unit", "text", "due") if getattr(self, name) and name not in needs.get(self.event, ())]
        if unused:
            raise ValueError(f"{self.event} takes no {', '.join(unused)}")
        return self


class BadEvent(ValueError):
    """The body is not a department event (400)."""


def parse_event(body: bytes) -> DeptEvent:
    """The body as a :class:`DeptEvent`; BadEvent (one line, no echo of the input) otherwise."""
    if len(body) > MAX_BODY:
        raise BadEvent(f"body over {MAX_BODY} bytes")
    try:
        return DeptEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise BadEvent(f"{where}: {first.get('msg', 'invalid')}") from None


class Refused(Exception):
    """The event is not allowed on this ticket now: ``status`` 403 (not this department's) or 409."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def returned_by(ticket: Ticket) -> str:
    """The department that returned the ticket last ("" if it is not returned)."""
    if ticket.status != "returned":
        return ""
    for entry in reversed(ticket.timeline):
        if entry.event == "dept returned":
            return entry.detail.partition("：")[0]
    return ""


def check(ticket: Ticket, event: DeptEvent, title: str) -> None:
    """Refused unless department ``title`` may send ``event`` to ``ticket`` now."""
    if not ticket.department or ticket.department != title:
        raise Refused(403, "ticket not assigned to this department")
    if ticket.status == "returned" and returned_by(ticket) == title:
        raise Refused(409, "returned by this department: the hotline re-dispatches it")
    if ticket.status not in TRANSITIONS[event.event]:
        raise Refused(409, f"{event.event} not allowed after {ticket.status}")


@dataclass(frozen=True)
class Change:
    """What an applied event did: the status after it and the deadline (for the answer)."""

    status: str
    due: str


def apply(ticket: Ticket, event: DeptEvent, title: str, now: datetime, *, calendar: HolidayCalendar,
          max_extension_days: int) -> Change:
    """Check and apply ``event`` to ``ticket`` in place, with its timeline entry (Mandarin, local
    time); Refused when it may not."""
    check(ticket, event, title)
    at = now.astimezone().isoformat(timespec="milliseconds")
    if event.event == "extend":
        before = ticket.deadline.due if ticket.deadline else ""
        ticket.deadline = extended(ticket.deadline, event.due, now, calendar, max_extension_days)
        ticket.note(at, "dept extend", f"{title}：截止 {before or '无'} → {ticket.deadline.due}（{event.text}）")
    else:
        ticket.status = event.event
        detail = {"dispatched": f"派至 {event.unit}", "handling": "开始办理", "closed": f"答复：{event.text}",
                  "returned": f"退回原因：{event.text}"}[event.event]
        ticket.note(at, f"dept {event.event}", f"{title}：{detail}")
    return Change(ticket.status, ticket.deadline.due if ticket.deadline else "")


def extended(current: Deadline | None, due: str, now: datetime, calendar: HolidayCalendar, max_days: int) -> Deadline:
    """The deadline after an extension to ``due``: later than the current one (and than now), at
    most ``max_days`` working days past it (crisis deadlines, given as times: ``max_days`` × 24 h)."""
    if current is None:
        raise Refused(409, "the ticket has no deadline to extend")
    if "T" in current.due:  # crisis hours
        try:
            new_at, old_at = datetime.fromisoformat(due), datetime.fromisoformat(current.due)
        except ValueError:
            raise Refused(409, "due must be an ISO time with its offset (crisis deadline)") from None
        if new_at.tzinfo is None:
            raise Refused(409, "due must carry its UTC offset")
        if new_at <= max(old_at, now):
            raise Refused(409, "due must be later than the current deadline")
        if new_at > old_at + timedelta(days=max_days):
            raise Refused(409, f"due more than {max_days} days past the current deadline")
        return Deadline(due=new_at.isoformat(timespec="seconds"), rule=f"延期至 {new_at:%Y-%m-%d %H:%M}")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", due):
        raise Refused(409, "due must be an ISO date (YYYY-MM-DD)")
    try:
        new_day, old_day = date.fromisoformat(due), date.fromisoformat(current.due)
    except ValueError:
        raise Refused(409, "due is not a date") from None
    if new_day <= max(old_day, now.astimezone().date()):
        raise Refused(409, "due must be later than the current deadline")
    if new_day > calendar.add_working_days(old_day, max_days):
        raise Refused(409, f"due more than {max_days} working days past the current deadline")
    if not calendar.is_working_day(new_day):
        raise Refused(409, "due is not a working day")
    return Deadline(due=new_day.isoformat(), rule=f"延期至 {new_day.isoformat()}")


def overdue(ticket: Ticket, now: datetime) -> bool:
    """Open (not 办结) and past its deadline: a date deadline is due by the end of its day."""
    since = overdue_from(ticket)
    return since is not None and now.astimezone() >= since


def overdue_from(ticket: Ticket) -> datetime | None:
    """The first instant an open case is overdue (None: closed, no deadline, or unreadable): a
    report counted once keeps this instead of a yes or no that goes stale as time passes."""
    if ticket.status in CLOSED_STATUSES or ticket.deadline is None or not ticket.deadline.due:
        return None
    due = ticket.deadline.due
    try:
        if "T" in due:  # crisis hours: overdue once the instant has passed
            return datetime.fromisoformat(due).astimezone() + timedelta(microseconds=1)
        return datetime.combine(date.fromisoformat(due) + timedelta(days=1), time()).astimezone()
    except ValueError:
        return None


def closed_on_time(ticket: Ticket) -> bool | None:
    """For a closed ticket: whether its closing came by the deadline (None: not closed, or no deadline)."""
    if ticket.status not in CLOSED_STATUSES or ticket.deadline is None or not ticket.deadline.due:
        return None
    closing = next((e.at for e in reversed(ticket.timeline) if e.event == "dept closed"), "")
    if not closing:
        return None
    try:
        at = datetime.fromisoformat(closing)
        due = ticket.deadline.due
        return at <= datetime.fromisoformat(due) if "T" in due else at.date() <= date.fromisoformat(due)
    except ValueError:
        return None
