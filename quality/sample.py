"""The random sample of recorded calls to inspect, per agent and day (no I/O).

Reproducible: each call of the day gets a rank from a digest of the day, the agent and the ticket
number, and the sample is the agent's ``n`` lowest-ranked recorded calls. Two supervisors (or the
console and ``ivr stats quality-sample``) see the same list, a later look at the same day too;
a call that comes in later in the day enters the sample only if it ranks below one already in it.
Calls without a kept recording are never offered; calls already scored stay in it, marked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from quality.model import Call


@dataclass(frozen=True)
class Pick:
    """One call of the sample."""

    number: str
    received: str
    scored: bool
    total: int | None  # the latest inspection's total (None: not yet scored)

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "received": self.received, "scored": self.scored, "total": self.total}


def rank(day: date, agent: str, number: str) -> bytes:
    """The order a call is drawn in: seeded by the day and the agent, the same in every process."""
    return hashlib.sha256(f"{day.isoformat()}|{agent}|{number}".encode()).digest()


def sample(calls: Iterable[Call], day: date, n: int) -> dict[str, list[Pick]]:
    """Agent → up to ``n`` of its recorded calls received on ``day`` (local time), by ticket number."""
    per_agent: dict[str, list[Call]] = {}
    for call in calls:
        if call.recorded and call.agent and call.number and _day(call.received) == day:
            per_agent.setdefault(call.agent, []).append(call)
    out: dict[str, list[Pick]] = {}
    for agent in sorted(per_agent):
        drawn = sorted(per_agent[agent], key=lambda c: rank(day, agent, c.number))[:n]
        out[agent] = [Pick(c.number, c.received, c.inspection is not None, c.inspection.total if c.inspection else None)
                      for c in sorted(drawn, key=lambda c: c.number)]
    return out


def _day(received: str) -> date:
    return datetime.fromisoformat(received).astimezone().date()
