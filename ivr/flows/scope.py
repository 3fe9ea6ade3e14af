"""``out_of_scope``: a matter 12345 does not accept (不予受理): says the matter's configured
explanation (``config/outofscope.yaml``) and marks the call, so its ticket says out of scope
and which matter; then goes on to ``next`` (a seat, a goodbye).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.flows.base import CallContext, Linear, Step, Timing, node_type
from tickets.scope import OUT_OF_SCOPE_VAR


@node_type
class OutOfScope(Linear):
    type: Literal["out_of_scope"] = "out_of_scope"
    matter: str = Field(description="a matter in config/outofscope.yaml (litigation, petition, …)")

    def seconds(self, timing: Timing) -> float:
        return timing.explanation(self.matter)

    def config_refs(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        return [(("matter",), "out_of_scope", self.matter)]

    async def run(self, ctx: CallContext) -> Step:
        ctx.variables[OUT_OF_SCOPE_VAR] = self.matter
        await ctx.play(ctx.settings.out_of_scope[self.matter].prompt)
        return Step(goto=self.next, outcome=f"out of scope: {self.matter}")
