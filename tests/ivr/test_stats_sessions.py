"""``ivr stats sessions``' counting (领导接听): each configured session's tickets and outcomes; and
the session as ``ivr tickets show`` prints it."""

from __future__ import annotations

from datetime import date

from ivr.commands.stats_sessions import session_calls
from queues.sessions import LeaderSession
from tickets.cli_text import details
from tickets.model import Ticket

SESSIONS = {
    "roads": LeaderSession(topic="道路修复", day=date(2026, 12, 2), time="09:00-10:00", prompt="p", seats=("leader3001",)),
    "flood": LeaderSession(topic="汛后恢复重建", day=date(2026, 12, 1), time="23:30-00:30", prompt="p",
                           seats=("leader3001", "leader3002")),
}


def ticket(n: int, session: str, agent: str = "", disposition: str = "answered") -> Ticket:
    return Ticket(linkedid=f"1.{n}", line="12345", caller="13800000000", received="2026-12-01T23:40:00+08:00",
                  session=session, agent=agent, answered="2026-12-01T23:41:00+08:00" if agent else "",
                  disposition=disposition)


def test_each_session_counts_its_own_tickets_by_outcome_in_time_order() -> None:
    rows = session_calls(SESSIONS, [
        ticket(1, "flood", "leader3002"), ticket(2, "flood", "leader3001"), ticket(3, "flood", "agent1001"),
        ticket(4, "flood", disposition="abandoned_queue"), ticket(5, "flood", disposition="callback"),
        ticket(6, "", "agent1002"), ticket(7, "gone", "leader3001"), ticket(8, "roads", "leader3001"),
    ])
    assert [r.session for r in rows] == ["flood", "roads"]
    flood, roads = rows
    assert (flood.offered, flood.by_its_seats, flood.by_others, flood.abandoned, flood.other) == (5, 2, 1, 1, 1)
    assert flood.start.endswith("2026-12-01 23:30") and flood.end == "2026-12-02 00:30"
    assert (roads.offered, roads.by_its_seats) == (1, 1)


def test_tickets_show_names_the_session_and_says_nothing_of_sessions_without_one() -> None:
    assert "\n  session       flood (领导接听 leader session)\n" in details(ticket(1, "flood", "leader3001"))
    assert "session" not in details(ticket(2, "", "agent1001"))
