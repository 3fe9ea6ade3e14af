"""``ivr stats sessions``: each leader reception session's calls (领导接听, config/sessions.yaml) and
how they ended: offered, answered by the session's own seats, answered by another seat (the caller
moved on to the general queue), abandoned, other. Read from the tickets, which name their session;
read only, no caller numbers."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Iterable, Mapping

from ivr.cli import UsageError
from ivr.commands.common import load_settings, read_tickets
from ivr.commands.stats_order import aligned
from queues.sessions import LeaderSession
from tickets.model import Disposition, Ticket

if TYPE_CHECKING:
    from tickets.store import TicketStore

SLACK_S = 3600  # tickets received this long before a session (still in the menus as it began) or after it


@dataclass
class SessionCalls:
    session: str
    topic: str
    start: str  # local, "2026-12-01 09:00"
    end: str
    offered: int = 0
    by_its_seats: int = 0  # answered by one of the session's seats
    by_others: int = 0  # answered, by a seat that is not the session's (moved on to the general queue)
    abandoned: int = 0  # hung up waiting (or in the menus after choosing)
    other: int = 0  # a callback, an error, a lost node


def session_calls(sessions: Mapping[str, LeaderSession], tickets: Iterable[Ticket]) -> list[SessionCalls]:
    """One row per configured session, in time order, counting the tickets marked with it."""
    rows = {sid: SessionCalls(sid, s.topic, f"{s.window().start:%Y-%m-%d %H:%M}", f"{s.window().end:%Y-%m-%d %H:%M}")
            for sid, s in sorted(sessions.items(), key=lambda kv: kv[1].window().start)}
    for t in tickets:
        row = rows.get(t.session)
        if row is None:
            continue
        row.offered += 1
        if t.answered and t.agent:
            if t.agent in sessions[t.session].seats:
                row.by_its_seats += 1
            else:
                row.by_others += 1
        elif t.disposition in (Disposition.ABANDONED_QUEUE, Disposition.ABANDONED_IVR):
            row.abandoned += 1
        elif t.disposition:
            row.other += 1
    return list(rows.values())


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--day", metavar="DATE", default=None, help="only the sessions that start that day (local)")
    parser.add_argument("--json", action="store_true", help="as JSON")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    sessions = dict(settings.sessions)
    if args.day is not None:
        try:
            day = date.fromisoformat(args.day.strip())
        except ValueError:
            raise UsageError(f"bad --day {args.day!r}: expected a date (2026-12-01)") from None
        sessions = {sid: s for sid, s in sessions.items() if s.day == day}
    windows = [s.window() for s in sessions.values()]

    async def reading(store: "TicketStore") -> list[Ticket]:
        if not windows:
            return []
        slack = timedelta(seconds=SLACK_S)
        since, until = min(w.start for w in windows) - slack, max(w.end for w in windows) + slack
        return await store.received_between(since.timestamp(), until.timestamp())

    rows = session_calls(sessions, read_tickets(settings, reading))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    heading = ["领导接听 session", "专题 topic", "时段 time", "来电 offered", "本场座席接听 by its seats",
               "其他座席 by others", "放弃 abandoned", "其他 other"]
    cells = [[r.session, r.topic, f"{r.start}–{r.end[11:]}", *map(str, (r.offered, r.by_its_seats, r.by_others,
                                                                       r.abandoned, r.other))] for r in rows]
    print("\n".join(aligned([heading, *cells])) if rows else "（无领导接听场次 no leader session configured）")
    return 0


HELP = "领导接听 each leader reception session's calls: offered, answered by its seats, abandoned"
