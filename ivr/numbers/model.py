"""The number plan as admins write it: every dialed number and how it reaches the platform
(``config/plans/<name>.yaml`` and ``numbers:``; composed by :mod:`ivr.config.settings`)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from ivr.core.conftext import Title
from ivr.core.strict import Strict


class Compliance(Strict):
    """Why a dialable number's flow may take longer than the 15 s to a human (``ivr check``)."""

    exempt: str = Field(min_length=4, description="the reason, for the auditor (e.g. a demo line, a self-service line)")


class NumberEntry(Strict):
    """One dialed number: 12345 itself, or an old department number folded into it."""

    mode: Literal["main", "merged", "dual", "subcenter"]
    title: Title = Field(description="written into Asterisk's dialplan as a comment: one line, no $ ; [ ] \\ { } \" |")
    department: str = Field("", description="the department the number belongs to (责任单位)")
    flow: str | None = Field(None, description="its own flow; merged numbers take the 12345 flow")
    skill: str | None = Field(None, description="dual: the queue its calls are pre-routed to (expert seats)")
    expert: bool = Field(False, description="the department has expert seats (专家座席) at the hotline")
    subcenter: str | None = None
    announce_until: date | None = Field(
        None, description="merged: the transitional notice (过渡期语音提示) is played up to this day"
    )
    compliance: Compliance | None = Field(
        None, description="exempt from the 15 s worst case to a human, and why (every other number is held to it)"
    )


class NumberPlan(Strict):
    """A number plan file (``config/plans/<name>.yaml``): every number that reaches the platform."""

    title: str
    source: str = ""
    numbers: dict[str, NumberEntry]
