"""The rubric (``quality:`` in ``config/quality.yaml``) and the scoring rules (no I/O).

A supervisor scores a recorded call item by item, each 0..its points; the form is checked here
before anything is stored: every item of the rubric present, whole numbers in range, no item the
rubric does not have. An inspection keeps the rubric's version (a digest of its items and pass
mark), so a score given under an older rubric is still read as what it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Mapping

from pydantic import Field

from ivr.core.conftext import Title
from ivr.core.strict import NAME, Strict
from tickets.model import QualityScore, Ticket

__all__ = ["COMMENT_MAX", "Call", "QualityError", "QualityItem", "QualitySettings", "Scored", "check_scores", "latest", "recorded",
           "rubric_version"]

COMMENT_MAX = 1000  # characters of a supervisor's comment
POINTS = re.compile(r"[0-9]{1,3}")  # what a score field may hold: a whole number, no sign, no space


class QualityItem(Strict):
    """One line of the rubric: what is judged (its Mandarin label) and its most points."""

    label: Title = Field(description="what the supervisor judges, as the form shows it (开场问候)")
    points: int = Field(ge=1, le=100, description="the most points this item gives")


class QualitySettings(Strict):
    """The rubric, its pass mark and how many calls per agent and day the sample offers."""

    items: dict[str, QualityItem] = Field({}, description="the rubric's items in the order the form shows them "
                                          "(none: quality inspection is off)")
    pass_mark: int = Field(80, ge=0, description="a call passes with at least this total")
    sample_per_agent_per_day: int = Field(2, ge=0, le=50, description="recorded calls per agent and day the random "
                                          "sample offers for inspection")

    @property
    def total(self) -> int:
        return sum(item.points for item in self.items.values())

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Names the form cannot carry, and a pass mark no call could reach."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for name in self.items:
            if not re.fullmatch(NAME, name):
                out.append((("quality", "items", name), f"item name {name!r} must match {NAME}"))
        if self.items and self.pass_mark > self.total:
            out.append((("quality", "pass_mark"), f"{self.pass_mark} is above the rubric's total ({self.total}): "
                        "no call could pass"))
        return out


def rubric_version(rubric: QualitySettings) -> str:
    """A short digest of what a score means: the items, their points and the pass mark."""
    text = json.dumps([[n, i.label, i.points] for n, i in rubric.items.items()] + [rubric.pass_mark], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class QualityError(ValueError):
    """A form refused before anything is stored; the message is for the supervisor (Mandarin)."""


@dataclass(frozen=True)
class Scored:
    """A checked form: the points per item (in the rubric's order), their total, the comment."""

    scores: dict[str, int]
    total: int
    comment: str


def check_scores(rubric: QualitySettings, form: Mapping[str, str], comment: str) -> Scored:
    """The scores of ``form`` (item name → the text typed), when every item of the rubric is there
    as a whole number within 0..its points and nothing else is; QualityError otherwise."""
    if not rubric.items:
        raise QualityError("未配置质检评分表（config/quality.yaml），不能评分。")
    unknown = sorted(set(form) - set(rubric.items))
    if unknown:
        raise QualityError(f"评分表中没有此项：{_shown(unknown[0])}")
    scores: dict[str, int] = {}
    for name, item in rubric.items.items():
        text = form.get(name)
        if text is None or not text.strip():
            raise QualityError(f"缺少评分项：{item.label}")
        if not POINTS.fullmatch(text.strip()):
            raise QualityError(f"{item.label}：分数须为 0 到 {item.points} 的整数")
        points = int(text)
        if points > item.points:
            raise QualityError(f"{item.label}：{points} 分超过满分 {item.points}")
        scores[name] = points
    if len(comment) > COMMENT_MAX:
        raise QualityError(f"评语过长（最多 {COMMENT_MAX} 字）")
    return Scored(scores, sum(scores.values()), comment.strip())


def recorded(ticket: Ticket) -> bool:
    """A call can be inspected when one of its recordings is still kept (not deleted by retention)."""
    return any(not r.deleted and not r.failed for r in ticket.recordings)


def latest(ticket: Ticket) -> QualityScore | None:
    """The inspection that counts: a re-score appends, the latest wins."""
    return ticket.quality[-1] if ticket.quality else None


def _shown(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


@dataclass(frozen=True)
class Call:
    """What the averages and the sample need of one ticket (read a batch at a time, the tickets
    themselves are not kept)."""

    number: str
    agent: str
    queue: str
    received: str  # ISO time
    recorded: bool
    inspection: QualityScore | None

    @classmethod
    def of(cls, ticket: Ticket) -> "Call":
        return cls(ticket.number, ticket.agent, ticket.queue, ticket.received, recorded(ticket), latest(ticket))
