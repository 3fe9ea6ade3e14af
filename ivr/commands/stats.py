"""``ivr stats``: the service level per queue and per dialed line (15-second answer rate, …).

Reads the counters the engine keeps in Redis as calls leave their queues (queues/kpi.py builds
the report; the web wallboard will read the same). Read only; counters hold no personal data.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, time, timedelta
from typing import Any

from ivr.cli import UsageError
from ivr.commands.common import load_settings, read_tickets, text_width, when
from queues import kpi

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


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--day", metavar="DATE", default=None, help="one day (2026-12-01), local time")
    parser.add_argument("--since", metavar="DATE|DATETIME", default=None,
                        help="calls that entered a queue at or after (2026-12-01 = its 00:00 local)")
    parser.add_argument("--until", metavar="DATE|DATETIME", default=None,
                        help="… and before (2026-12-01 = up to the end of that day; default: now)")
    parser.add_argument("--json", action="store_true", help="the reports as JSON (as the wallboard reads them)")


def run(args: argparse.Namespace) -> int:
    windows = _windows(args, datetime.now().astimezone())
    settings = load_settings(args)

    async def reading(store: Any) -> list[dict[str, Any]]:
        return [await store.kpi_report(w) for w in windows]

    reports = read_tickets(settings, reading)
    if args.json:
        print(json.dumps({"reports": reports}, ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(_table(r) for r in reports))
    return 0


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
    since, until = (datetime.fromisoformat(report[k]) for k in ("since", "until"))
    title = f"{WINDOW_TITLES.get(report['window'], report['window'])}: {since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M}"
    rows = [(f"队列 {name}", c) for name, c in report["queues"].items()]
    rows += [(f"线路 {name}", c) for name, c in report["lines"].items()]
    rows.append(("全平台 all lines", report["platform"]))
    cells = [[label, *(_cell(c[field], fmt) for _h, field, fmt in COLUMNS)] for label, c in rows]
    heading = ["", *(h for h, _f, _fmt in COLUMNS)]
    widths = [max(text_width(r[i]) for r in [heading, *cells]) for i in range(len(heading))]
    lines = [title] + ["  ".join(_pad(v, w, left=i == 0) for i, (v, w) in enumerate(zip(r, widths)))
                       for r in [heading, *cells]]
    if not report["queues"]:
        lines.append("（无来电 no calls left a queue in this window）")
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "%":
        return f"{value:.1%}"
    if fmt == "s":
        return f"{value:.1f}s"
    return str(value)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - text_width(text))
    return text + fill if left else fill + text
