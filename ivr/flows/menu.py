"""``menu``: a prompt, one key per choice, bounded retries, repeat and back keys.

GB/T 33358 and the 15 s answer benchmark say menus should be thin; the lint checks that the
flow's human key (``0`` by default) reaches a seat from every menu.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.flows.asking import REPEAT, Asking
from ivr.flows.base import CallContext, Digits, Edge, Step, Target, Timing, node_type


@node_type
class Menu(Asking):
    """Say ``prompt``, read one key, go where ``keys`` says."""

    type: Literal["menu"] = "menu"
    keys: dict[Digits, Target] = Field(min_length=1, description="key → node id")
    repeat_key: Digits | None = Field(None, description="replays the prompt (counts as an attempt)")
    back_key: Digits = "*"
    back: Target | None = Field(None, description="node the back key returns to (usually the parent menu)")

    def choices(self) -> dict[str, str]:
        out = dict(self.keys)
        if self.back:
            out.setdefault(self.back_key, self.back)
        return out

    def edges(self, timing: Timing) -> list[Edge]:
        answers: list[tuple[str, str, tuple[str | int, ...]]] = [(f"key {k}", t, ("keys", k)) for k, t in self.keys.items()]
        if self.back:
            answers.append((f"key {self.back_key} (back)", self.back, ("back",)))
        return self.asking_edges(timing, 1, answers)

    async def run(self, ctx: CallContext) -> Step:
        choices = self.choices()

        def accept(key: str) -> Step | None:
            if key in choices:
                return Step(goto=choices[key], outcome=f"key {key}")
            return REPEAT if key == self.repeat_key else None

        return await self.ask(ctx, 1, accept)
