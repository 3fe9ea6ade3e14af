"""``say``: read back digits or a number (e.g. the ID number the caller just typed)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from ivr.flows.base import CallContext, Linear, PromptId, Step, Timing, node_type

VARIABLE = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")


@node_type
class Say(Linear):
    type: Literal["say"] = "say"
    prompt: PromptId | None = Field(None, description="said first, e.g. you_entered")
    value: str = Field(description="digits, with ${var} replaced, e.g. ${id_number}")
    mode: Literal["digits", "number"] = "digits"

    def seconds(self, timing: Timing) -> float:
        literal = VARIABLE.sub("", self.value)
        count = len(literal) + sum(timing.max_length(v) for v in VARIABLE.findall(self.value))
        return (timing.prompt(self.prompt) if self.prompt else 0.0) + timing.digits(count)

    async def run(self, ctx: CallContext) -> Step:
        await ctx.play(self.prompt)
        value = ctx.expand(self.value)
        if self.mode == "number" and value.isdigit():
            await ctx.channel.say_number(int(value))
        elif self.mode == "digits" and value:
            await ctx.channel.say_digits(value)
        return Step(goto=self.next, outcome=f"said {len(value)} digits")
