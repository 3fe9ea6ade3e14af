"""``branch``: choose the next node by dialed number, caller, variables, time and calendar, or
whether the caller has an open ticket (the engine's look-up: 12345 offers them the progress query),
or whether a leader session is on (config/sessions.yaml: its prompt replaces the greeting).

Cases are tried in order; a case matches when every condition it states holds. "Now" comes
from the call context, so tests (and the simulator's ``--at``) can pin it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ivr.flows.base import OWN_TICKETS_WAIT, CallContext, Edge, Node, NodeModel, Regex, Step, Target, Texts, Timing, VarName, node_type
from ivr.core.calendar import DayKind
from ivr.core.timerange import in_time_range, parse_time_range

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Condition(NodeModel):
    """All stated conditions must hold."""

    dialed: Texts = Field((), description="the dialed number is one of these")
    caller_prefix: Texts = Field((), description="the caller number starts with one of these")
    var: VarName | None = Field(None, description="a call variable, compared with equals or matches")
    equals: str | None = None
    matches: Regex | None = None
    time: str | None = Field(None, description="HH:MM-HH:MM local time; may wrap midnight (22:00-06:00)")
    weekday: tuple[Weekday, ...] = ()
    day: DayKind | None = Field(None, description="working (incl. 调休 weekends), rest, or holiday")
    open_ticket: bool | None = Field(None, description="the caller has (true) or has not (false) an open ticket from the "
                                                       "last tickets.repeat_days: the engine's look-up, never caller data")
    session: bool | None = Field(None, description="a leader session (config/sessions.yaml) is (true) or is not (false) "
                                                   "on now for the dialed line")

    @field_validator("time")
    @classmethod
    def _time_range(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time_range(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Condition":
        if (self.var is None) != (self.equals is None and self.matches is None):
            raise ValueError("var needs equals or matches (and they need var)")
        if not any((self.dialed, self.caller_prefix, self.var, self.time, self.weekday, self.day)) \
                and self.open_ticket is None and self.session is None:
            raise ValueError("a condition needs at least one test")
        return self

    def holds(self, ctx: CallContext, now: datetime, has_open: bool = False) -> bool:
        value = ctx.variables.get(self.var, "") if self.var else ""
        tests = (
            not self.dialed or ctx.call.dialed in self.dialed,
            not self.caller_prefix or ctx.call.caller.startswith(self.caller_prefix),
            self.equals is None or value == ctx.expand(self.equals),
            self.matches is None or re.fullmatch(self.matches, value) is not None,
            self.time is None or in_time_range(now.time(), *parse_time_range(self.time)),
            not self.weekday or WEEKDAYS[now.weekday()] in self.weekday,
            self.day is None or ctx.calendar.matches(now.date(), self.day),
            self.open_ticket is None or self.open_ticket == has_open,
            self.session is None or self.session == (ctx.session_now() is not None),
        )
        return all(tests)


class Case(NodeModel):
    when: Condition
    goto: Target


@node_type
class Branch(Node):
    type: Literal["branch"] = "branch"
    cases: tuple[Case, ...]
    otherwise: Target = Field(alias="else", description="where to go when no case matches")

    def asks_tickets(self) -> bool:
        return any(c.when.open_ticket is not None for c in self.cases)

    def edges(self, timing: Timing) -> list[Edge]:
        wait = OWN_TICKETS_WAIT if self.asks_tickets() else 0.0  # the look-up may still be running
        out = [Edge(f"case {i + 1}", c.goto, ("cases", i, "goto"), wait) for i, c in enumerate(self.cases)]
        return out + [Edge("else", self.otherwise, ("else",), wait)]

    async def run(self, ctx: CallContext) -> Step:
        now = ctx.now()
        has_open = any(is_open for _, is_open in await ctx.recent_tickets()) if self.asks_tickets() else False
        for i, case in enumerate(self.cases):
            if case.when.holds(ctx, now, has_open):
                return Step(goto=case.goto, outcome=f"case {i + 1}")
        return Step(goto=self.otherwise, outcome="else")
