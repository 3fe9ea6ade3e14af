"""Averages of the inspections (no I/O): per agent and per queue, the number of calls inspected,
the average total, the share that passed and the average of each rubric item.

The latest inspection of a call counts (a re-score replaces the earlier one); a call inspected
under an older rubric counts with its total, and in an item's average only if it scored that item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from quality.model import Call, QualitySettings

DEFAULT_DAYS = 7  # the averages' range unless one is asked for: the last 7 days, today included


@dataclass(frozen=True)
class Average:
    """One row of an averages table."""

    name: str  # the agent or the queue
    count: int  # calls inspected
    average: float  # of their totals
    pass_rate: float  # share with total ≥ the pass mark
    items: dict[str, float | None]  # rubric item → average points (None: no inspection scored it)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "count": self.count, "average": round(self.average, 2),
                "pass_rate": round(self.pass_rate, 4),
                "items": {k: None if v is None else round(v, 2) for k, v in self.items.items()}}


def averages(calls: Iterable[Call], rubric: QualitySettings, key: Callable[[Call], str]) -> list[Average]:
    """A row per ``key`` (``lambda c: c.agent``) over the inspected calls, by name."""
    groups: dict[str, list[Call]] = {}
    for call in calls:
        if call.inspection is not None and key(call):
            groups.setdefault(key(call), []).append(call)
    rows = []
    for name in sorted(groups):
        scored = [c.inspection for c in groups[name] if c.inspection is not None]
        items: dict[str, float | None] = {}
        for item in rubric.items:
            points = [s.scores[item] for s in scored if item in s.scores]
            items[item] = sum(points) / len(points) if points else None
        rows.append(Average(name, len(scored), sum(s.total for s in scored) / len(scored),
                            sum(s.total >= rubric.pass_mark for s in scored) / len(scored), items))
    return rows


def by_agent(calls: Iterable[Call], rubric: QualitySettings) -> list[Average]:
    return averages(calls, rubric, lambda c: c.agent)


def by_queue(calls: Iterable[Call], rubric: QualitySettings) -> list[Average]:
    return averages(calls, rubric, lambda c: c.queue)
