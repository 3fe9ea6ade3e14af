"""``play``: one or more prompts, interruptible or not.

An interrupting digit is kept as type-ahead for the next menu, so a caller who knows to
press ``0`` during the greeting reaches a seat without hearing the menu.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.flows.base import CallContext, Linear, PromptIds, Step, Timing, node_type

ALL_DIGITS = "0123456789*#"


@node_type
class Play(Linear):
    type: Literal["play"] = "play"
    prompts: PromptIds = Field(min_length=1, description="prompt ids, said in order")
    interruptible: bool = Field(False, description="a key press stops the prompts and is kept for the next menu")

    def seconds(self, timing: Timing) -> float:
        return sum(timing.prompt(p) for p in self.prompts)

    async def run(self, ctx: CallContext) -> Step:
        for prompt in self.prompts:
            if digit := await heard(ctx, prompt, self.interruptible):
                return Step(goto=self.next, outcome=f"interrupted by {digit}")
        return Step(goto=self.next, outcome="played")


async def heard(ctx: CallContext, prompt: str, interruptible: bool) -> str:
    """Say one prompt; the key that interrupts it (returned) is kept as type-ahead for the next menu."""
    digit = await ctx.channel.stream(ctx.sound(prompt), ALL_DIGITS if interruptible else "")
    if digit:
        ctx.typeahead = ctx.press(digit)
    return digit
