"""Leader reception sessions (领导接听 / 专题接听): a city leader or department heads take calls on
one topic at an announced time.

A session is data (``config/sessions.yaml``), not a flow: the main flow's ``session`` branch case,
its ``session_prompt`` node and a queue node with ``session: true`` read whichever session is on
now. Sessions may not overlap, so at most one is ever on and one shared ``leader`` queue serves
them all; a new or moved session needs only an engine reload, never an Asterisk one. Who that
queue rings is :func:`held_queues`' rule, which every node's seat applier enforces
(queues/seat_applier.py): a leader seat not in the session on now is held paused there
(:data:`SESSION_REASON`), outside every session all of them are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Mapping

from pydantic import Field, field_validator

from ivr.core.strict import NAME, NUMBER, Strict
from ivr.core.timerange import parse_time_range

__all__ = ["LEADER_QUEUE", "SESSION_REASON", "LeaderSession", "Window", "active_session", "held_queues", "next_edge",
           "on_now", "on_or_next", "session_problems"]

LEADER_QUEUE = "leader"
"""The one queue every session's calls wait in; its seats are the leaders' (skill ``leader``)."""
SESSION_REASON = "非本场次"
"""The pause reason of a leader seat held in the leader queue: not a seat of the session on now."""


class LeaderSession(Strict):
    """One announced session: when, on what, who answers, and what callers hear."""

    topic: str = Field(min_length=1, max_length=80, description="the topic, as staff see it (灾后重建)")
    day: date = Field(description="the local day it starts (2026-12-07)")
    time: str = Field(description="HH:MM-HH:MM local; an end at or before the start is on the next day")
    prompt: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                        description="catalog prompt that replaces the greeting while it is on (say the topic and key 6)")
    seats: tuple[str, ...] = Field(min_length=1, description="the leader's and the department heads' seats (agents "
                                   "serving the leader queue)")
    lines: tuple[str, ...] = Field((), description="dialed numbers it is announced on; none: every line of the main flow")

    @field_validator("time")
    @classmethod
    def _time_range(cls, value: str) -> str:
        start, end = parse_time_range(value)
        if start == end:
            raise ValueError(f"{value!r} is an empty window")
        return value

    @field_validator("lines")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number in value:
            if not re.fullmatch(NUMBER, number):
                raise ValueError(f"line {number!r} must be 3-16 digits")
        return value

    def window(self) -> "Window":
        """Its start and end as aware local times: 24:00 and an end before the start are the next day's."""
        start, end = parse_time_range(self.time)
        if end == time.max:
            ends = datetime.combine(self.day + timedelta(days=1), time())
        else:
            ends = datetime.combine(self.day + timedelta(days=1) if end <= start else self.day, end)
        return Window(datetime.combine(self.day, start).astimezone(), ends.astimezone())


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def holds(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def overlaps(self, other: "Window") -> bool:
        return self.start < other.end and other.start < self.end


def active_session(sessions: Mapping[str, LeaderSession], now: datetime, dialed: str) -> str | None:
    """The id of the session on now for a call to ``dialed`` (at most one: they may not overlap)."""
    for sid, session in sessions.items():
        if (not session.lines or dialed in session.lines) and session.window().holds(now):
            return sid
    return None


def on_now(sessions: Mapping[str, LeaderSession], now: datetime) -> LeaderSession | None:
    """The session on now, on any line (at most one: they may not overlap)."""
    return next((s for s in sessions.values() if s.window().holds(now)), None)


def held_queues(sessions: Mapping[str, LeaderSession], agent: str, now: datetime) -> dict[str, str]:
    """The queues ``agent`` must be paused in at ``now`` whatever it asked for (queue → reason):
    the leader queue, unless the agent is a seat of the session on now. So the one shared queue
    rings exactly that session's seats, and nobody outside every session (key 6 does not lead
    there then). Windows hold their start, not their end, as for callers."""
    session = on_now(sessions, now)
    return {} if session is not None and agent in session.seats else {LEADER_QUEUE: SESSION_REASON}


def next_edge(sessions: Mapping[str, LeaderSession], now: datetime) -> datetime | None:
    """The first session start or end after ``now`` (when :func:`held_queues` may change by
    itself); None when no session lies ahead."""
    edges = [edge for s in sessions.values() for edge in (s.window().start, s.window().end) if edge > now]
    return min(edges, default=None)


def on_or_next(sessions: Mapping[str, LeaderSession], now: datetime) -> tuple[str, bool] | None:
    """For the wallboard: the session on now, on any line (``(id, True)``), else the next one that
    starts later on the same local day (``(id, False)``); None when neither. Windows hold their
    start, not their end, so a session ending at 10:00 is no longer on at 10:00."""
    today = now.astimezone().date()
    later: list[tuple[datetime, str]] = []
    for sid, session in sessions.items():
        window = session.window()
        if window.holds(now):
            return sid, True
        if now < window.start and window.start.date() == today:
            later.append((window.start, sid))
    return (min(later)[1], False) if later else None


def session_problems(sessions: Mapping[str, LeaderSession], leader_seats: set[str],
                     has_queue: bool) -> list[tuple[tuple[str | int, ...], str]]:
    """Overlaps, unknown or non-leader seats, a missing leader queue: (path in the config, reason)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if sessions and not has_queue:
        out.append((("sessions",), f"leader sessions need a queue named {LEADER_QUEUE!r} (config/queues.yaml)"))
    seen: list[tuple[str, Window]] = []
    for sid, session in sessions.items():
        if not re.fullmatch(NAME, sid):
            out.append((("sessions", sid), f"session id {sid!r} must match {NAME}"))
        for i, seat in enumerate(session.seats):
            if seat not in leader_seats:
                out.append((("sessions", sid, "seats", i), f"seat {seat!r} is not a leader seat (an agent with the "
                            f"{LEADER_QUEUE!r} skill in config/queues.yaml)"))
        window = session.window()
        for other, theirs in seen:
            if window.overlaps(theirs):
                out.append((("sessions", sid, "time"), f"session {sid!r} overlaps session {other!r} "
                            f"({theirs.start:%Y-%m-%d %H:%M}–{theirs.end:%H:%M}): one leader queue serves one at a time"))
        seen.append((sid, window))
    return out
