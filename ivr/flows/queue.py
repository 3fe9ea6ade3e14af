"""``queue``: wait for a seat in a queue defined in ``config/queues.yaml``.

Like every terminal node it never waits for the seat itself: it returns a route and the
dialplan carries it out, so the engine does not hold the call. The priority the call waits
with is decided by :mod:`queues.priority` from the node's own ``priority``, ``one_key`` and
what the engine knows of the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.flows.base import CallContext, Step, Terminal, node_type
from ivr.core.route import QueueRoute, Route

if TYPE_CHECKING:
    from ivr.config import Settings


@node_type
class Queue(Terminal):
    """Wait for a seat; the 7×24 ``general`` queue or a skill such as ``expert-hrss``."""

    type: Literal["queue"] = "queue"
    queue: str = Field(description="a queue in config/queues.yaml (a skill such as expert-hrss)")
    priority: int = Field(0, ge=0, le=100, description="higher is answered first")
    one_key: bool = Field(
        False,
        description="一键转人工: the queue a menu key leads to directly; a caller who pressed it waits with "
        "priority.one_key (config/queues.yaml). Only menu keys may lead here",
    )
    session: bool = Field(False, description="领导接听: mark the call (and its ticket) with the leader session on now "
                          "(config/sessions.yaml); reach it through a branch on session: true")
    ends = "human"

    async def run(self, ctx: CallContext) -> Step:
        if self.session:
            ctx.leader_session = ctx.session_now() or ""
        return await super().run(ctx)

    def config_refs(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        return [(("queue",), "queues", self.queue)]

    def route(self, settings: "Settings") -> Route:
        return QueueRoute(self.queue, self.priority, one_key=self.one_key)
