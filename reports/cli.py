"""``ivr stats report``: the hotline office's 日报、周报、月报、年报 as a table, CSV or XLSX (the
same counts as the console's 统计报表 page). Read only; no caller numbers."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ivr.cli import UsageError
from ivr.commands.common import load_settings, read_tickets
from ivr.commands.stats_order import aligned
from reports.files import HOT_HEADINGS, csv_bytes, heading, hot_row, values, view_rows, xlsx_bytes
from reports.model import PERIODS, SHARES, VIEWS, COLUMNS, Report, period

if TYPE_CHECKING:
    from tickets.store import TicketStore

Part = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", choices=list(PERIODS), default="day", help="day, week (Monday first), month or year")
    parser.add_argument("--date", metavar="DATE", default=None, help="a day in the period (default: today), local time")
    parser.add_argument("--format", choices=("text", "csv", "xlsx"), default="text", help="text (default), csv or xlsx")
    parser.add_argument("--output", "-o", metavar="FILE", default=None,
                        help="write the file here (default: standard output; xlsx needs a file or a pipe)")


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now().astimezone().date()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad --date {text!r}: expected a date (2026-12-01)") from None


def run(args: argparse.Namespace) -> int:
    p = period(args.period, _day(args.date))
    if args.format == "xlsx" and args.output is None and sys.stdout.isatty():
        raise UsageError("--format xlsx writes a binary file: give --output FILE (or pipe it)")
    settings = load_settings(args)

    async def reading(store: "TicketStore") -> Report:
        from reports.read import read_report  # Redis' client is imported when a command reads

        return await read_report(store.redis, p, settings.reports, low=settings.tickets.satisfaction_low,
                                 retention_days=settings.tickets.retention_days)

    report = read_tickets(settings, reading)
    data = {"csv": csv_bytes, "xlsx": xlsx_bytes}.get(args.format)
    if data is None:
        print(text(report))
        return 0
    if args.output is None:
        sys.stdout.buffer.write(data(report))
        sys.stdout.flush()
        return 0
    try:
        Path(args.output).write_bytes(data(report))
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"{report.period.title}: {report.tally.total.calls} 件来电 → {args.output}", file=sys.stderr)
    return 0


def _cell(name: str, value: object) -> str:
    if value is None:
        return "-"
    if name in SHARES and isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def text(report: Report) -> str:
    """The report as aligned tables: hot spots first, then each view."""
    p = report.period
    out = [f"{p.title}（{p.start:%Y-%m-%d %H:%M} – {p.end:%Y-%m-%d %H:%M} {p.zone}）", "", "热点 hot spots"]
    hot = [[str(c) for c in hot_row(h)] for h in report.hot]
    out += ["  " + line for line in aligned([list(HOT_HEADINGS), *hot])] if hot else ["  （无 none）"]
    for view in report.tally.shown():
        label = VIEWS[view]
        rows = [[name, *(_cell(n, v) for (n, _h), v in zip(COLUMNS, values(row)))] for name, row in view_rows(report, view)]
        out += ["", label]
        out += ["  " + line for line in aligned([heading(view), *rows])] if rows else ["  （无 none）"]
    return "\n".join(out)


STATS: dict[str, Part] = {
    "report": ("日报、周报、月报、年报: per line, queue, request type and department, hot spots; text, CSV or XLSX",
               _register, run),
}

__all__ = ["STATS", "text"]
