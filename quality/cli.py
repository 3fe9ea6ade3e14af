"""``ivr stats quality`` and ``ivr stats quality-sample``: the quality inspection's averages per
agent and per queue over a date range, and the day's random sample of recorded calls to inspect
per agent (the same list the console's 质检 page shows). Read only; no caller numbers."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Callable

from ivr.cli import UsageError
from ivr.commands.common import load_settings, read_tickets
from ivr.commands.stats_order import aligned
from quality.model import Call, QualitySettings
from quality.sample import Pick, sample
from quality.stats import DEFAULT_DAYS, Average, by_agent, by_queue

if TYPE_CHECKING:
    from tickets.store import TicketStore


# `ivr stats NAME`: (help, register, run), read by ivr/commands/stats.py
Part = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _register_averages(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="first", metavar="DATE", default=None,
                        help=f"first day of calls received (default: {DEFAULT_DAYS - 1} days ago)")
    parser.add_argument("--to", dest="last", metavar="DATE", default=None, help="last day, included (default: today)")
    parser.add_argument("--json", action="store_true", help="as JSON")


def _register_sample(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", metavar="DATE", default=None, help="the day (default: today)")
    parser.add_argument("--json", action="store_true", help="as JSON")


def _day(text: str | None, option: str, default: date) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"bad {option} {text!r}: expected a date (2026-12-01)") from None


def _calls(args: argparse.Namespace, first: date, last: date) -> tuple[QualitySettings, list[Call]]:
    from quality.read import day_bounds, read_calls  # Redis' client is imported when a command reads

    settings = load_settings(args)

    async def reading(store: "TicketStore") -> list[Call]:
        return await read_calls(store.redis, day_bounds(first)[0], day_bounds(last)[1])

    return settings.quality, read_tickets(settings, reading)


def run_averages(args: argparse.Namespace) -> int:
    today = datetime.now().astimezone().date()
    first = _day(args.first, "--from", today - timedelta(days=DEFAULT_DAYS - 1))
    last = _day(args.last, "--to", today)
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    rubric, calls = _calls(args, first, last)
    agents, queues = by_agent(calls, rubric), by_queue(calls, rubric)
    if args.json:
        print(json.dumps({"from": first.isoformat(), "to": last.isoformat(), "pass_mark": rubric.pass_mark,
                          "total": rubric.total, "items": {n: {"label": i.label, "points": i.points}
                                                           for n, i in rubric.items.items()},
                          "agents": [a.to_json() for a in agents], "queues": [q.to_json() for q in queues]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"质检 quality inspection {first} – {last}（满分 {rubric.total}，合格线 {rubric.pass_mark}）")
    for title, rows in (("座席 agent", agents), ("队列 queue", queues)):
        print(f"\n{title}")
        print("\n".join(_table(title.split()[0], rows, rubric)) if rows else "  （无质检记录 no inspections）")
    return 0


def _table(heading: str, rows: list[Average], rubric: QualitySettings) -> list[str]:
    head = [heading, "已质检 n", "平均分 avg", "合格率 pass", *(i.label for i in rubric.items.values())]
    cells = [[r.name, str(r.count), f"{r.average:.1f}", f"{r.pass_rate:.1%}",
              *("-" if r.items[n] is None else f"{r.items[n]:.1f}" for n in rubric.items)] for r in rows]
    return ["  " + line for line in aligned([head, *cells])]


def run_sample(args: argparse.Namespace) -> int:
    day = _day(args.date, "--date", datetime.now().astimezone().date())
    rubric, calls = _calls(args, day, day)
    picks = sample(calls, day, rubric.sample_per_agent_per_day)
    if args.json:
        print(json.dumps({"date": day.isoformat(), "per_agent": rubric.sample_per_agent_per_day,
                          "agents": {agent: [p.to_json() for p in ps] for agent, ps in picks.items()}},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"质检抽检 {day}：每位座席 {rubric.sample_per_agent_per_day} 通 sample per agent")
    rows = [[agent, p.number, _state(p)] for agent, ps in picks.items() for p in ps]
    print("\n".join("  " + line for line in aligned([["座席 agent", "工单 ticket", "质检"], *rows]))
          if rows else "  （当日无录音通话 no recorded calls that day）")
    return 0


def _state(p: Pick) -> str:
    return f"已评分 scored {p.total}" if p.scored else "待质检 to inspect"


STATS: dict[str, Part] = {
    "quality": ("质检 averages per agent and queue over a date range", _register_averages, run_averages),
    "quality-sample": ("质检 the day's random sample of recorded calls to inspect, per agent", _register_sample, run_sample),
}

__all__ = ["STATS"]
