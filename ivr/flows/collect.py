"""``collect``: read N digits into a variable (an ID number, a ticket number), with a check.

``#`` ends the input early (GET DATA does that); fewer than ``min_digits`` digits or a value
that does not match ``pattern`` counts as a wrong answer and costs a retry.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ivr.flows.asking import Asking
from ivr.flows.base import CallContext, Edge, Regex, Step, Target, Timing, VarName, node_type


@node_type
class Collect(Asking):
    """Say ``prompt``, read ``min_digits``..``max_digits`` digits into ``var``."""

    type: Literal["collect"] = "collect"
    var: VarName
    min_digits: int = Field(1, ge=1, le=32)
    max_digits: int = Field(ge=1, le=32)
    pattern: Regex | None = None
    next: Target

    @model_validator(mode="after")
    def _range(self) -> "Collect":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must not exceed max_digits")
        return self

    def edges(self, timing: Timing) -> list[Edge]:
        return self.asking_edges(timing, self.max_digits, [("valid input", self.next, ("next",))])

    def valid(self, digits: str) -> bool:
        if not self.min_digits <= len(digits) <= self.max_digits:
            return False
        if self.pattern is None:
            return digits.isdigit()
        # a pattern may admit * (e.g. an ID number's final X); it alone decides then
        return re.fullmatch(self.pattern, digits) is not None

    async def run(self, ctx: CallContext) -> Step:
        def accept(digits: str) -> Step | None:
            if not self.valid(digits):
                return None
            ctx.variables[self.var] = digits
            return Step(goto=self.next, outcome=f"{self.var}={len(digits)} digits")

        return await self.ask(ctx, self.max_digits, accept)
