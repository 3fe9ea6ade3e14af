"""The hotline office's periodic report (日报、周报、月报、年报), counted from tickets (no I/O).

A period is a local day, week (Monday first), month or year; the platform's day is China's
(UTC+8), so a period is cut at local midnight, never at UTC's. Every ticket received in the
period counts once in each of its views: its dialed line, its (last) queue, its request type,
and — when it was dispatched — its department. Counted per ticket, so a call that overflowed
from an expert queue counts in the queue that ended its wait, with the caller's whole wait:
the same rule as a line in ``ivr stats`` (queues/kpi.py), kept simple for an office's report.

Definitions (docs/kpi.md "Reports"):

- 来电 calls: every ticket received; 进入排队 offered: those that reached a queue;
- 人工接听 answered, within 15 s / 30 s of the first queue join; 排队放弃 abandoned in a queue;
- 直接答复: answered by a seat and not dispatched; 派单: assigned a department (承办单位);
- 按时办结 / 超时办结: closed by a department's write-back by / after its deadline;
  超期未办结: open past its deadline when the report is made;
- 应回访 / 已回访: rated at or below ``tickets.satisfaction_low`` / with the visit recorded;
- 参评, 满意 (4–5) and the average of the 1–5 ratings.

Hot spots (热点): request types and departments whose ticket count jumped against the previous
period of the same kind: at least ``ratio`` times as many and at least ``min_increase`` more.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Iterable, Literal

from pydantic import Field

from ivr.core.strict import Strict
from tickets.model import Disposition, Ticket
from tickets.revisit import due as revisit_due, visit as revisit_visit
from tickets.export import type_label
from tickets.workflow import closed_on_time, overdue

PeriodKind = Literal["day", "week", "month", "year"]
PERIODS: dict[str, str] = {"day": "日报", "week": "周报", "month": "月报", "year": "年报"}
VIEWS = {"line": "线路", "queue": "队列", "type": "诉求类型", "department": "承办单位", "session": "领导接听场次"}
EVERY_TICKET = ("line", "queue", "type")  # views every ticket has a row in: they end with the total
SOMETIMES = ("session",)  # views shown only when a ticket of the period is in one: leader sessions
UNSET = {"line": "（无线路）", "queue": "（未排队）", "type": "（未分类）"}  # a ticket without that field
TOTAL = "合计"


class ReportSettings(Strict):
    """``reports:`` in config/reports.yaml: when a request type or department is a hot spot."""

    hotspot_ratio: float = Field(2.0, ge=1.0, le=100.0, description="a hot spot has at least this many times the "
                                 "previous period's tickets …")
    hotspot_min_increase: int = Field(10, ge=1, le=1_000_000, description="… and at least this many more (small "
                                      "counts that double are noise)")


@dataclass(frozen=True)
class Period:
    """[start, end) in local time, and the period of the same kind before it."""

    kind: str
    start: datetime
    end: datetime

    @property
    def title(self) -> str:
        """``日报 2026-12-01``, ``周报 2026-11-30 – 2026-12-06``, ``月报 2026-12``, ``年报 2026``."""
        first, last = self.start.date(), (self.end - timedelta(days=1)).date()
        text = {"day": first.isoformat(), "week": f"{first} – {last}", "month": first.strftime("%Y-%m"),
                "year": str(first.year)}[self.kind]
        return f"{PERIODS[self.kind]} {text}"

    @property
    def zone(self) -> str:
        """``UTC+8``: the clock the period was cut on (the host's; production's is China's)."""
        offset = self.start.utcoffset() or timedelta()
        hours, rest = divmod(int(offset.total_seconds()), 3600)
        return f"UTC{hours:+d}" + (f":{rest // 60:02d}" if rest else "")

    def previous(self) -> "Period":
        return period(self.kind, self.start.date() - timedelta(days=1), self.start.tzinfo)


def period(kind: str, day: date, tz: tzinfo | None = None) -> Period:
    """The period of ``kind`` that holds ``day``, cut at midnight of ``tz`` (None: the host's local time)."""
    if kind == "day":
        first, after = day, day + timedelta(days=1)
    elif kind == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif kind == "month":
        first = day.replace(day=1)
        after = first + timedelta(days=calendar.monthrange(day.year, day.month)[1])
    elif kind == "year":
        first, after = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    else:
        raise ValueError(f"unknown period {kind!r} (one of {', '.join(PERIODS)})")
    return Period(kind, _midnight(first, tz), _midnight(after, tz))


def _midnight(day: date, tz: tzinfo | None) -> datetime:
    at = datetime.combine(day, time())
    return at.replace(tzinfo=tz) if tz is not None else at.astimezone()


@dataclass
class Row:
    """The counts of one line, queue, request type or department (or the total)."""

    calls: int = 0
    offered: int = 0
    answered: int = 0
    answered_15: int = 0
    answered_30: int = 0
    abandoned: int = 0
    direct: int = 0
    dispatched: int = 0
    closed_on_time: int = 0
    closed_late: int = 0
    overdue: int = 0
    revisit_due: int = 0
    revisit_done: int = 0
    rated: int = 0
    satisfied: int = 0
    rating_sum: int = 0

    @property
    def rate_15(self) -> float | None:
        return self.answered_15 / self.offered if self.offered else None

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None

    @property
    def average(self) -> float | None:
        return self.rating_sum / self.rated if self.rated else None

    def add(self, other: "Row") -> None:
        mine, theirs = vars(self), vars(other)  # four rows per ticket: no dataclass reflection here
        for name in theirs:
            mine[name] += theirs[name]


COLUMNS: tuple[tuple[str, str], ...] = (  # (Row attribute, Mandarin heading), in the order every output shows them
    ("calls", "来电量"), ("offered", "进入排队"), ("answered", "人工接听"), ("answered_15", "15秒内接听"),
    ("answered_30", "30秒内接听"), ("abandoned", "排队放弃"), ("rate_15", "15秒接通率"), ("direct", "直接答复"),
    ("dispatched", "派单"), ("closed_on_time", "按时办结"), ("closed_late", "超时办结"), ("overdue", "超期未办结"),
    ("revisit_due", "应回访"), ("revisit_done", "已回访"), ("rated", "参评数"), ("satisfied", "满意数"),
    ("satisfied_share", "满意率"), ("average", "平均评分"),
)
SHARES = frozenset({"rate_15", "satisfied_share"})  # shown as percentages


def counts(t: Ticket, now: datetime | None, low: int) -> Row:
    """What one ticket adds to each row it is in; ``now`` None: 超期未办结 left at 0 (a day
    tally keeps when each open case falls due instead: reports/tallies.py)."""
    answered = bool(t.answered)
    wait = t.wait_seconds
    on_time = closed_on_time(t)
    rated = t.satisfaction_status == "rated" and t.satisfaction is not None
    return Row(
        calls=1, offered=int(bool(t.queued or t.queue_visits)), answered=int(answered),
        answered_15=int(answered and wait is not None and wait <= 15),
        answered_30=int(answered and wait is not None and wait <= 30),
        abandoned=int(t.disposition == Disposition.ABANDONED_QUEUE),
        direct=int(answered and not t.department), dispatched=int(bool(t.department)),
        closed_on_time=int(on_time is True), closed_late=int(on_time is False), overdue=int(now is not None and overdue(t, now)),
        revisit_due=int(revisit_due(t, low)), revisit_done=int(revisit_due(t, low) and revisit_visit(t) is not None),
        rated=int(rated), satisfied=int(rated and (t.satisfaction or 0) >= 4),
        rating_sum=(t.satisfaction or 0) if rated else 0,
    )


def keys(t: Ticket) -> dict[str, str | None]:
    """The row of each view a ticket counts in (None: not in that view). A leader reception
    session (领导接听) is the ticket's ``session`` on platforms whose tickets carry one."""
    session = getattr(t, "session", "")
    return {"line": t.line or UNSET["line"], "queue": t.queue or UNSET["queue"],
            "type": type_label(t.request_type) if t.request_type else UNSET["type"],
            "department": t.department or None, "session": session if isinstance(session, str) and session else None}


@dataclass
class Tally:
    """The report being counted: fed a batch of tickets at a time, keeps only counts."""

    now: datetime
    low: int
    views: dict[str, dict[str, Row]] = field(default_factory=lambda: {v: {} for v in VIEWS})
    total: Row = field(default_factory=Row)

    def add(self, tickets: Iterable[Ticket]) -> None:
        for t in tickets:
            row = counts(t, self.now, self.low)
            self.total.add(row)
            for view, key in keys(t).items():
                if key is not None:
                    self.views[view].setdefault(key, Row()).add(row)

    def sorted(self, view: str) -> list[tuple[str, Row]]:
        """The rows of a view, the busiest first (then by name, for a stable order)."""
        return sorted(self.views[view].items(), key=lambda kv: (-kv[1].calls, kv[0]))

    def shown(self) -> list[str]:
        """The views a report shows: a sometimes-view only when it has rows."""
        return [v for v in VIEWS if v not in SOMETIMES or self.views[v]]

    def volumes(self) -> dict[str, Counter[str]]:
        """Tickets per request type and per department: what hot spots compare."""
        return {v: Counter({k: r.calls for k, r in self.views[v].items()}) for v in HOT_VIEWS}


HOT_VIEWS = ("type", "department")


@dataclass(frozen=True)
class HotSpot:
    view: str  # "type" | "department"
    name: str
    current: int
    previous: int

    @property
    def increase(self) -> int:
        return self.current - self.previous

    @property
    def ratio(self) -> float | None:
        """Times the previous period's count (None: there was none)."""
        return self.current / self.previous if self.previous else None


def hot_spots(current: dict[str, Counter[str]], previous: dict[str, Counter[str]],
              settings: ReportSettings) -> list[HotSpot]:
    """Request types and departments at least ``hotspot_ratio`` × and ``hotspot_min_increase``
    above the previous period, the largest increase first."""
    out = [HotSpot(view, name, n, previous.get(view, Counter())[name])
           for view in HOT_VIEWS for name, n in current.get(view, Counter()).items()]
    hot = [h for h in out if h.increase >= settings.hotspot_min_increase
           and h.current >= settings.hotspot_ratio * h.previous]
    return sorted(hot, key=lambda h: (-h.increase, h.view, h.name))


@dataclass(frozen=True)
class Report:
    """One report as every output shows it."""

    period: Period
    tally: Tally
    hot: list[HotSpot]
    made: datetime  # when it was counted (超期未办结 is as of this moment)
