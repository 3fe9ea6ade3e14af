"""``ivr stats``: the service level per queue and per dialed line (15-second answer rate, …).

Reads the counters the engine keeps in Redis as calls leave their queues (queues/kpi.py builds
the report; the web wallboard will read the same), and beside them the order inversions across
nodes and the seat collisions, counted from the window's tickets (queues/order.py). Read only;
counters hold no personal data.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, time, timedelta
from typing import Any

from ivr.cli import UsageError
from ivr.commands.common import load_settings, read_tickets, when
from ivr.commands import stats_sessions
from ivr.commands.stats_order import aligned, order_text
from queues import kpi
from quality.cli import STATS as QUALITY_PARTS
from reports.cli import STATS as REPORT_PARTS

HELP = "service level per queue and line: offered, answered within 15/30 s, abandoned, waits"

WINDOW_TITLES = {"today": "今日 today", "last_hour": "近1小时 last hour", "last_24h": "近24小时 last 24 h",
                 "day": "当日 day", "range": "时段 range"}
COLUMNS = (  # (heading, report field, format)
    ("offered", "offered", "d"), ("answered", "answered", "d"), ("≤15s", "answered_15", "d"),
    ("≤30s", "answered_30", "d"), ("abandoned", "abandoned", "d"), ("≤5s", "abandoned_5", "d"),
    ("overflow", "overflowed", "d"), ("callback", "callbacks", "d"),
    ("节点故障中断", "node_lost", "d"), ("15秒接通率", "answer_rate_15", "%"),
    ("接通率", "answer_rate", "%"), ("呼损率", "abandon_rate", "%"), ("avg wait", "avg_wait_s", "s"),
    ("longest", "longest_wait_s", "s"),
)
SURVEY_COLUMNS = (  # the satisfaction survey (queues/kpi.py): asked, rated, shares
    ("邀评 asked", "survey_offered", "d"), ("参评 rated", "rated", "d"), ("参评率", "rated_share", "%"),
    ("平均分 average", "average", ".2f"), ("满意 4–5", "satisfied", "d"), ("满意率", "satisfied_share", "%"),
    ("低分 ≤low", "low_rated", "d"),
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--day", metavar="DATE", default=None, help="one day (2026-12-01), local time")
    parser.add_argument("--since", metavar="DATE|DATETIME", default=None,
                        help="calls that entered a queue at or after (2026-12-01 = its 00:00 local)")
    parser.add_argument("--until", metavar="DATE|DATETIME", default=None,
                        help="… and before (2026-12-01 = up to the end of that day; default: now)")
    parser.add_argument("--json", action="store_true", help="the reports as JSON (as the wallboard reads them)")
    parts = parser.add_subparsers(dest="part", metavar="PART",
                                  help="a report of its own instead (quality, quality-sample, report, sessions)")
    sessions = (stats_sessions.HELP, stats_sessions.register, stats_sessions.run)
    for name, (help_, register_part, run_part) in {**QUALITY_PARTS, **REPORT_PARTS, "sessions": sessions}.items():
        p = parts.add_parser(name, help=help_, description=help_)
        register_part(p)
        p.set_defaults(_run=run_part)


def run(args: argparse.Namespace) -> int:
    windows = _windows(args, datetime.now().astimezone())
    settings = load_settings(args)

    nodes = list(settings.cluster.nodes) if settings.cluster is not None else []

    async def reading(store: Any) -> list[dict[str, Any]]:
        from queues.order_read import read_calls

        calls = await read_calls(store.redis, min(w.since for w in windows), max(w.until for w in windows), nodes)
        return [{**await store.kpi_report(w), "order": calls.report(nodes, w.since, w.until)} for w in windows]

    async def both(store: Any) -> tuple[list[dict[str, Any]], dict[str, float]]:
        from tickets.writeback import workflow_kpis

        return await reading(store), await workflow_kpis(store.redis)

    reports, workflow = read_tickets(settings, both)
    if args.json:
        print(json.dumps({"reports": reports, "workflow": workflow}, ensure_ascii=False, indent=2))
    else:
        print("\n\n".join([*(_table(r) for r in reports), *(_survey_table(r) for r in reports),
                            *(order_text(_title(r), r["order"]) for r in reports), workflow_text(workflow)]))
    return 0


def workflow_text(w: dict[str, float]) -> str:
    """The cases after the call (department write-back): overdue now, closed on time so far."""
    closed = int(w["closed_on_time"] + w["closed_late"])
    share = f"{w['on_time_share']:.1%}" if closed else "-"
    return (f"办理情况 cases: 超期未办结 overdue open {int(w['overdue'])}；"
            f"已办结 closed {closed}，按时办结率 closed on time {share}")


def _windows(args: argparse.Namespace, now: datetime) -> list[kpi.Window]:
    """Today, the last hour and the last 24 h; or the one day or range asked for."""
    if args.day is not None:
        if args.since is not None or args.until is not None:
            raise UsageError("--day goes alone (or use --since/--until)")
        try:
            day = date.fromisoformat(args.day.strip())
        except ValueError:
            raise UsageError(f"bad --day {args.day!r}: expected a date (2026-12-01)") from None
        start = datetime.combine(day, time()).astimezone()
        return [kpi.window("day", start, datetime.combine(day + timedelta(days=1), time()).astimezone(), now)]
    if args.since is None:
        if args.until is not None:
            raise UsageError("--until needs --since")
        return kpi.standard_windows(now)
    since = when(args.since, "--since", end_of_day=False)
    until = now if args.until is None else when(args.until, "--until", end_of_day=True)
    if until <= since:
        raise UsageError(f"--until is not after --since {since:%Y-%m-%d %H:%M}")
    return [kpi.window("range", since, until, now)]


def _table(report: dict[str, Any]) -> str:
    title = _title(report)
    rows = [(f"队列 {name}", c) for name, c in report["queues"].items()]
    rows += [(f"线路 {name}", c) for name, c in report["lines"].items()]
    rows.append(("全平台 all lines", report["platform"]))
    cells = [[label, *(_cell(c[field], fmt) for _h, field, fmt in COLUMNS)] for label, c in rows]
    heading = ["", *(h for h, _f, _fmt in COLUMNS)]
    lines = [title, *aligned([heading, *cells])]
    if not report["queues"]:
        lines.append("（无来电 no calls left a queue in this window）")
    return "\n".join(lines)


def _survey_table(report: dict[str, Any]) -> str:
    """满意度 per queue, line and agent of one window; the platform counts every call once."""
    survey = report["satisfaction"]
    rows = [(f"{label} {name}", c) for scope, label in (("queues", "队列"), ("lines", "线路"), ("agents", "座席"))
            for name, c in survey[scope].items()]
    rows.append(("全平台 all lines", survey["platform"]))
    cells = [[label, *(_cell(c[field], fmt) for _h, field, fmt in SURVEY_COLUMNS)] for label, c in rows]
    lines = [f"满意度 satisfaction, {_title(report)}", *aligned([["", *(h for h, _f, _fmt in SURVEY_COLUMNS)], *cells])]
    if not survey["lines"]:
        lines.append("（无评价 no caller was asked to rate in this window）")
    return "\n".join(lines)


def _title(report: dict[str, Any]) -> str:
    since, until = (datetime.fromisoformat(report[k]) for k in ("since", "until"))
    return f"{WINDOW_TITLES.get(report['window'], report['window'])}: {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M}"


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "%":
        return f"{value:.1%}"
    if fmt == "s":
        return f"{value:.1f}s"
    if fmt == ".2f":
        return f"{value:.2f}"
    return str(value)
