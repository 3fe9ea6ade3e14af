"""Service level and KPIs per queue and per dialed line (pure: no Redis, no protocol).

The call tracker ends a :class:`~tickets.model.QueueVisit` when the caller is answered,
abandons, overflows or chooses a callback; :func:`visit_increments` turns that one visit into
counter increments for time buckets, and :func:`build_report` turns bucket counters back into
the numbers a supervisor reads (``ivr stats``, the wallboard). The store applies a visit's
increments in the same script that records the visit's ticket phase, only when that phase is
new: each visit counts exactly once, however often its write is replayed.

Definitions (docs/kpi.md; DOMAIN "How a hotline is measured"):

- **per queue**, each visit counts: offered to that queue, and how it ended there. An expert
  call that overflows after 20 s and is answered in the general queue 3 s later is offered to
  both: overflowed in the expert queue, answered within 15 s in the general queue.
- **per dialed line**, each call counts once, when its waiting ends (answered, abandoned, a
  callback, lost, or the last queue left without an answer), with the caller's whole wait from
  the first queue: the same call is answered on its line, but not within 15 s.
- A visit is counted in the bucket of the moment it **entered** the queue (calls offered in an
  interval), when it ends; a caller still waiting is not offered yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from tickets.model import QueueVisit, Ticket, VisitOutcome

BUCKET_SECONDS = 300  # fine buckets: the last hour, the last 24 h, today
FINE_KEEP_SECONDS = 3 * 86_400  # fine buckets expire after this; day buckets after kpi_retention_days
ANSWER_WITHIN = (15, 30)  # seconds: the 15-second answer rate (15秒接通率), and 30 s
SHORT_ABANDON = 5  # seconds: abandons this quick are reported apart (callers who changed their mind)

# the counters of one bucket; ``max_*`` keep the largest value, the others add up
COUNTERS = ("offered", "answered", "answered_15", "answered_30", "abandoned", "abandoned_5", "overflowed",
            "callbacks", "lost", "node_lost", "wait_ms", "answer_wait_ms", "max_wait_ms")
_WAIT_ENDS = frozenset({VisitOutcome.ANSWERED, VisitOutcome.ABANDONED, VisitOutcome.CALLBACK, VisitOutcome.LOST,
                        VisitOutcome.NODE_LOST})
SCOPES = ("queue", "line")


@dataclass(frozen=True)
class Bucket:
    label: str  # ``yyyymmddHHMM`` (a fine bucket's start) or ``yyyymmdd`` (a day), local time
    expire_at: int  # epoch s: counters hold no personal data, but need not live forever


@dataclass(frozen=True)
class Increment:
    """What one visit adds to one queue's or one line's buckets (a fine one and its day)."""

    scope: str  # "queue" | "line"
    name: str  # the queue ("general") or the dialed line ("12345")
    counters: dict[str, int]
    buckets: tuple[Bucket, ...]

    def fields(self) -> str:
        """``offered 1 answered 1 …``: how the store's script reads the increments."""
        return " ".join(f"{name} {value}" for name, value in self.counters.items())


def visit_increments(ticket: Ticket, visit: QueueVisit, *, final: bool, keep_days: int) -> list[Increment]:
    """The increments of one ended visit: its queue's, and its line's when it ends the
    caller's waiting (``final``: the tracker knows no queue follows an overflow)."""
    joined = _joined(visit, ticket)
    if joined is None:
        return []
    buckets = _buckets(joined, keep_days)
    out = [Increment("queue", visit.queue, _counters(visit.outcome, visit.wait_seconds), buckets)]
    line = _line_increment(ticket, visit, final, keep_days)
    if line is not None:
        out.append(line)
    return out


def _line_increment(ticket: Ticket, visit: QueueVisit, final: bool, keep_days: int) -> Increment | None:
    """The call on its line: counted at the first visit that ends the waiting, with the whole wait."""
    if not (visit.outcome in _WAIT_ENDS or final):
        return None
    visits = ticket.queue_visits
    upto = len(visits) - 1 if visits and visits[-1] is visit else next(
        (i for i, v in enumerate(visits) if v is visit), len(visits) - 1)
    earlier = visits[:upto]  # usually none: one queue, one visit
    if any(v.outcome in _WAIT_ENDS for v in earlier):
        return None  # its waiting ended before (a later queue after an answer: a transfer)
    first = next((v for v in earlier if v.joined), visit)
    joined = _joined(first, ticket)
    if joined is None or not ticket.line:
        return None
    wait = visit.wait_seconds
    for v in earlier:
        wait = None if wait is None or v.wait_seconds is None else wait + v.wait_seconds
    return Increment("line", ticket.line, _counters(visit.outcome, wait), _buckets(joined, keep_days))


def _counters(outcome: str, wait: float | None) -> dict[str, int]:
    """One offered call that ended in ``outcome`` after ``wait`` seconds (None: not known, e.g.
    answered while no engine followed: it counts as answered, never as within 15 s)."""
    c = {"offered": 1}
    wait_ms = None if wait is None else max(0, round(wait * 1000))
    if outcome == VisitOutcome.ANSWERED:
        c["answered"] = 1
        for limit in ANSWER_WITHIN:
            if wait_ms is not None and wait_ms <= limit * 1000:
                c[f"answered_{limit}"] = 1
        if wait_ms is not None:
            c["answer_wait_ms"] = wait_ms
    elif outcome == VisitOutcome.ABANDONED:
        c["abandoned"] = 1
        if wait_ms is not None and wait_ms <= SHORT_ABANDON * 1000:
            c["abandoned_5"] = 1
    elif outcome == VisitOutcome.OVERFLOWED:
        c["overflowed"] = 1
    elif outcome == VisitOutcome.CALLBACK:
        c["callbacks"] = 1
    elif outcome == VisitOutcome.LOST:
        c["lost"] = 1
    elif outcome == VisitOutcome.NODE_LOST:
        c["node_lost"] = 1
    if wait_ms is not None:
        c["wait_ms"] = wait_ms
        c["max_wait_ms"] = wait_ms
    return c


def _joined(visit: QueueVisit, ticket: Ticket) -> float | None:
    """When the visit entered its queue (epoch s)."""
    at = visit.joined or ticket.queued or ticket.received
    try:
        return datetime.fromisoformat(at).timestamp() if at else None
    except ValueError:
        return None


def _buckets(at: float, keep_days: int) -> tuple[Bucket, Bucket]:
    """The fine bucket and the day of ``at`` (local time: the hotline's day is China's)."""
    return _bucket_pair(int(at) // BUCKET_SECONDS * BUCKET_SECONDS, keep_days)


@lru_cache(maxsize=256)
def _bucket_pair(start: int, keep_days: int) -> tuple[Bucket, Bucket]:
    """Calls of one 5 minutes share their buckets: worked out once (this runs on the engine's
    event path)."""
    local = time.localtime(start)
    midnight = int(time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1)))
    return (Bucket(time.strftime("%Y%m%d%H%M", local), start + FINE_KEEP_SECONDS),
            Bucket(time.strftime("%Y%m%d", local), midnight + (keep_days + 1) * 86_400))


def _fine_start(at: datetime) -> datetime:
    epoch = int(at.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS
    return datetime.fromtimestamp(epoch).astimezone()


# --- reading back ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """The buckets a report sums: fine buckets while they are kept, else whole days."""

    name: str
    since: datetime  # the first bucket's start (a window starts at a bucket boundary)
    until: datetime  # exclusive
    labels: tuple[str, ...]
    bucket_seconds: int


def window(name: str, since: datetime, until: datetime, now: datetime) -> Window:
    """The buckets that cover [since, until): 5-minute buckets when ``since`` is recent enough
    for them to be kept, else the days from ``since``'s day to ``until``'s (widened)."""
    since, until = since.astimezone(), min(until, now).astimezone()
    if since >= now - timedelta(seconds=FINE_KEEP_SECONDS - BUCKET_SECONDS):
        start = _fine_start(since)
        labels, at = [], start
        while at < until:
            labels.append(at.strftime("%Y%m%d%H%M"))
            at = datetime.fromtimestamp(at.timestamp() + BUCKET_SECONDS).astimezone()
        return Window(name, start, max(until, start), tuple(labels), BUCKET_SECONDS)
    first = datetime(since.year, since.month, since.day).astimezone()
    days, day = [], first.date()
    while datetime(day.year, day.month, day.day).astimezone() < until:
        days.append(day.strftime("%Y%m%d"))
        day += timedelta(days=1)
    end = datetime(day.year, day.month, day.day).astimezone()
    return Window(name, first, end, tuple(days), 86_400)


def standard_windows(now: datetime) -> list[Window]:
    """Today (since local midnight), the last hour and the last 24 hours."""
    now = now.astimezone()
    midnight = datetime(now.year, now.month, now.day).astimezone()
    return [window("today", midnight, now, now), window("last_hour", now - timedelta(hours=1), now, now),
            window("last_24h", now - timedelta(hours=24), now, now)]


def build_report(win: Window, buckets: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, Any]:
    """The report of one window from ``buckets``: dimension (``queue:general``, ``line:12345``)
    → bucket label → that bucket's counters as Redis holds them (text). Plain data (JSON)."""
    out: dict[str, Any] = {"window": win.name, "since": win.since.isoformat(timespec="seconds"),
                           "until": win.until.isoformat(timespec="seconds"), "bucket_seconds": win.bucket_seconds,
                           **_rows(win, buckets, SCOPES, sum_counters, with_rates, "offered")}
    out["platform"] = with_rates(sum_counters(out["lines"].values()))  # every call once: by its line
    return out


def _rows(win: Window, buckets: Mapping[str, Mapping[str, Mapping[str, str]]], scopes: tuple[str, ...],
          total: Callable[[Any], dict[str, int]], shown: Callable[[dict[str, int]], dict[str, Any]],
          counted: str) -> dict[str, Any]:
    """``queues``, ``lines``, … (one per scope): each dimension's counters summed over the
    window's buckets, as ``shown``, for the dimensions whose ``counted`` is not 0."""
    out: dict[str, Any] = {f"{scope}s": {} for scope in scopes}
    for dimension in sorted(buckets):
        scope, _, name = dimension.partition(":")
        if scope in scopes:
            totals = total(buckets[dimension].get(label) or {} for label in win.labels)
            if totals[counted]:
                out[f"{scope}s"][name] = shown(totals)
    return out


def sum_counters(rows: Any) -> dict[str, int]:
    total = dict.fromkeys(COUNTERS, 0)
    for row in rows:
        for name in COUNTERS:
            value = int(row.get(name) or 0)
            total[name] = max(total[name], value) if name.startswith("max_") else total[name] + value
    return total


def with_rates(c: dict[str, int]) -> dict[str, Any]:
    """The counters and what is read off them: rates of the offered calls, waits in seconds."""
    offered, answered = c["offered"], c["answered"]
    return {
        **{name: c[name] for name in COUNTERS},
        "answer_rate": _ratio(answered, offered),
        "answer_rate_15": _ratio(c["answered_15"], offered),  # 15秒接通率
        "answer_rate_30": _ratio(c["answered_30"], offered),
        "abandon_rate": _ratio(c["abandoned"], offered),  # 呼损率
        "avg_wait_s": _ratio(c["wait_ms"], 1000 * offered, 1),
        "avg_answer_s": _ratio(c["answer_wait_ms"], 1000 * answered, 1),
        "longest_wait_s": round(c["max_wait_ms"] / 1000, 1),
    }


def _ratio(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


# --- satisfaction (满意度) ------------------------------------------------------------------
# Satisfaction (满意度) counted per queue, dialed line, agent and day (pure: no Redis).
#
# The survey ([ivr-survey], docs/tickets.md "Satisfaction") asks the caller for a key 1–5 after
# the agent hangs up; the ticket says ``rated`` (with the key), ``no_rating`` (asked, no valid
# key) or ``not_asked``. When a ticket closes, :func:`survey_increments` turns its outcome into
# counter increments in the same KPI buckets the service level uses (queues/kpi.py): the store
# applies them with the ticket's ``survey`` phase, so a replayed or duplicated close counts once.
# They are counted for the call's queue, its line and its agent (scope ``agent``), in the bucket
# of the moment the call was answered. :func:`satisfaction_report` reads them back.
#
# Counters: ``survey_offered`` (the caller was asked), ``rated``, ``rating_sum``, ``satisfied``
# (4 or 5: 满意 and 非常满意 on the 1–5 scale) and ``low_rated`` (at or below
# ``tickets.satisfaction_low``, 2 by default: a callback visit is due). Read off them:
# ``rated_share`` = rated ÷ offered, ``average`` = rating_sum ÷ rated, ``satisfied_share`` =
# satisfied ÷ rated (满意率, of the calls that rated).

SURVEY_COUNTERS = ("survey_offered", "rated", "rating_sum", "satisfied", "low_rated")
SATISFIED_FROM = 4  # 4 and 5 of the survey's 1–5 scale
SURVEY_SCOPES = ("queue", "line", "agent")
SURVEY_PHASE = "survey"  # the ticket phase that carries the increments: counted once per call


def survey_increments(ticket: Ticket, *, low: int, keep_days: int) -> list[Increment]:
    """What a closed ticket's survey adds to its queue's, line's and agent's buckets; [] when the
    caller was not asked (no agent answered, or the survey is off)."""
    if ticket.satisfaction_status not in ("rated", "no_rating"):
        return []
    at = _epoch(ticket.answered or ticket.queued or ticket.received)
    if at is None:
        return []
    counters = {"survey_offered": 1}
    rating = ticket.satisfaction if ticket.satisfaction_status == "rated" else None
    if rating is not None and 1 <= rating <= 5:
        counters |= {"rated": 1, "rating_sum": rating}
        if rating >= SATISFIED_FROM:
            counters["satisfied"] = 1
        if rating <= low:
            counters["low_rated"] = 1
    buckets = _buckets(at, keep_days)
    names = {"queue": ticket.queue, "line": ticket.line, "agent": ticket.agent}
    return [Increment(scope, name, counters, buckets) for scope, name in names.items() if name]


def satisfaction_report(win: Window, buckets: Mapping[str, Mapping[str, Mapping[str, str]]]) -> dict[str, Any]:
    """Per queue, line and agent (only those asked at least once in the window) and the
    platform (every call once: by its line) — the counters and the shares read off them."""
    out = _rows(win, buckets, SURVEY_SCOPES, sum_survey, with_shares, "survey_offered")
    out["platform"] = with_shares(sum_survey(out["lines"].values()))
    return out


def sum_survey(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    total = dict.fromkeys(SURVEY_COUNTERS, 0)
    for row in rows:
        for name in SURVEY_COUNTERS:
            total[name] += int(row.get(name) or 0)
    return total


def with_shares(c: dict[str, int]) -> dict[str, Any]:
    rated = c["rated"]
    return {**{name: c[name] for name in SURVEY_COUNTERS},
            "rated_share": _ratio(c["rated"], c["survey_offered"]),  # 参评率
            "average": _ratio(c["rating_sum"], rated, 2),  # 平均分
            "satisfied_share": _ratio(c["satisfied"], rated)}  # 满意率


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None
