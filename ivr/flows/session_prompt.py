"""``session_prompt``: the announcement of the leader session on now (领导接听), in place of the
greeting: its topic and the key that joins it, from the session's own catalog prompt.

The prompt is data (config/sessions.yaml), so the lint counts the longest one configured and a
session whose announcement would push the flow over its budget is refused at check and reload.
Reached from a ``branch`` on ``session: true``; should the session end in between, nothing is said.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ivr.flows.base import CallContext, Linear, Step, Timing, node_type
from ivr.flows.play import heard


@node_type
class SessionPrompt(Linear):
    type: Literal["session_prompt"] = "session_prompt"
    interruptible: bool = Field(True, description="a key press stops the announcement and is kept for the next menu")

    def seconds(self, timing: Timing) -> float:
        return timing.session_prompt()

    async def run(self, ctx: CallContext) -> Step:
        sid = ctx.session_now()
        if sid is None:
            return Step(goto=self.next, outcome="no session")
        if digit := await heard(ctx, ctx.settings.sessions[sid].prompt, self.interruptible):
            return Step(goto=self.next, outcome=f"interrupted by {digit}")
        return Step(goto=self.next, outcome=f"played {sid}")
