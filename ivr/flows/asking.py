"""Prompt-and-wait with bounded retries: what ``menu`` and ``collect`` have in common.

Each attempt is one ``GET DATA`` (prompt + digits in one AGI round trip). A timeout or an
answer the node refuses costs one retry; before the next attempt the caller hears the
timeout or invalid prompt. When the retries run out the call goes to ``on_exhausted``.

Two counters keep every call finite: ``retries`` per visit, and ``max_visits`` per call
(a caller going back and forth between menus ends at ``on_exhausted`` too). That is why
the validator accepts loops through these nodes and refuses loops around them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from pydantic import Field

from ivr.flows.base import CallContext, Edge, Node, PromptId, Seconds, Step, Target, Timing

REPEAT = Step(outcome="repeat")
"""Returned by ``accept`` to replay the prompt without a notice (the menu's repeat key)."""


class Asking(Node):
    prompt: PromptId
    timeout: Seconds = Field(5.0, description="seconds to wait for a digit after the prompt")
    retries: int = Field(2, ge=0, le=5, description="extra attempts after a timeout or a wrong answer")
    invalid_prompt: PromptId | None = Field("invalid_key", description="said before retrying a wrong answer")
    timeout_prompt: PromptId | None = Field("no_input", description="said before retrying after silence")
    max_visits: int = Field(3, ge=1, le=10, description="entries per call; then straight to on_exhausted")
    on_exhausted: Target = Field(description="where to go when the retries or visits run out")

    def attempt_seconds(self, timing: Timing, max_digits: int) -> float:
        """Worst case of one attempt: the whole prompt, then the timeout for every digit."""
        return timing.prompt(self.prompt) + self.timeout * max_digits

    def worst_seconds(self, timing: Timing, max_digits: int) -> float:
        """Worst case before any exit: every retry used, each preceded by its longer notice.

        A caller answering on the last attempt and a caller who never answers cost the same.
        """
        notice = max((timing.prompt(p) for p in (self.invalid_prompt, self.timeout_prompt) if p), default=0.0)
        return (self.retries + 1) * self.attempt_seconds(timing, max_digits) + self.retries * notice

    def asking_edges(self, timing: Timing, max_digits: int, answers: Sequence[tuple[str, str, tuple[str | int, ...]]]) -> list[Edge]:
        """Edges for (label, target, path) answers plus ``on_exhausted``, all at the worst cost."""
        seconds = self.worst_seconds(timing, max_digits)
        out = [Edge(label, target, path, seconds, limit=self.max_visits) for label, target, path in answers]
        out.append(Edge("exhausted", self.on_exhausted, ("on_exhausted",), seconds))
        return out

    async def ask(self, ctx: CallContext, max_digits: int, accept: Callable[[str], Step | None]) -> Step:
        """Run the attempts; ``accept`` turns an answer into a step, or ``None`` to retry."""
        if ctx.count_visit() > self.max_visits:
            return Step(goto=self.on_exhausted, outcome="visits exhausted")
        for attempt in range(self.retries + 1):
            if attempt == 0 and ctx.typeahead and max_digits == 1:
                answer, ctx.typeahead = ctx.typeahead, ""  # already recorded by the play node
            else:
                ctx.typeahead = ""
                timeout_ms = int(self.timeout * 1000)
                answer = ctx.press(await ctx.channel.get_data(ctx.sound(self.prompt), timeout_ms, max_digits))
            step = accept(answer) if answer else None
            if step is not None and step is not REPEAT:
                return step
            if attempt < self.retries and step is None:
                await ctx.play(self.invalid_prompt if answer else self.timeout_prompt)
        return Step(goto=self.on_exhausted, outcome="retries exhausted")
