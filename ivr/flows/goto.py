"""``goto`` (jump inside the flow, optionally a bounded number of times) and ``subflow``.

A ``goto`` with ``max_times`` is how an admin writes a loop the validator accepts: after
``max_times`` jumps in one call it goes to ``otherwise``. A ``subflow`` hands the call to
another flow's start (e.g. a merged number's notice, then the 12345 main flow); it does not
return, so a flow is always a tree of tail calls and can be linted as one path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ivr.flows.base import CallContext, Edge, Node, Step, Target, Timing, node_type


@node_type
class Goto(Node):
    type: Literal["goto"] = "goto"
    to: Target
    max_times: int | None = Field(None, ge=1, le=10, description="jumps per call before going to otherwise")
    otherwise: Target | None = None

    @model_validator(mode="after")
    def _bounded_pair(self) -> "Goto":
        if (self.max_times is None) != (self.otherwise is None):
            raise ValueError("max_times and otherwise go together")
        return self

    def edges(self, timing: Timing) -> list[Edge]:
        if self.otherwise is None:
            return [Edge("goto", self.to, ("to",), 0.0)]
        return [Edge("goto", self.to, ("to",), 0.0, limit=self.max_times), Edge("otherwise", self.otherwise, ("otherwise",), 0.0)]

    async def run(self, ctx: CallContext) -> Step:
        if self.otherwise is not None and self.max_times is not None and ctx.count_visit() > self.max_times:
            return Step(goto=self.otherwise, outcome="max_times reached")
        return Step(goto=self.to, outcome="goto")


@node_type
class Subflow(Node):
    type: Literal["subflow"] = "subflow"
    flow: str = Field(description="name of another flow (its file stem in config/flows/)")
    ends = "subflow"

    async def run(self, ctx: CallContext) -> Step:
        return Step(flow=self.flow, outcome=f"enter {self.flow}")
