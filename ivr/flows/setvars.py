"""``set``: give call variables values (``${var}``, ``${dialed}``, ``${caller}`` expand).

Variables live in the call record and in branch conditions; with ``channel: true`` they are
also set on the Asterisk channel (for the dialplan or CDRs), together with the route.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.flows.base import CallContext, Linear, Step, VarName, node_type


@node_type
class SetVars(Linear):
    type: Literal["set"] = "set"
    vars: dict[VarName, str] = Field(min_length=1, description="name → value")
    channel: bool = Field(False, description="also set them as channel variables")

    async def run(self, ctx: CallContext) -> Step:
        for name, value in self.vars.items():
            ctx.variables[name] = ctx.expand(value)
            if self.channel:
                ctx.channel_variables[name.upper()] = ctx.variables[name]
        return Step(goto=self.next, outcome="set " + ",".join(self.vars))
