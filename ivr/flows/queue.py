"""``queue``: wait for a seat in a queue defined in ``config/queues.yaml``.

Like every terminal node it never waits for the seat itself: it returns a route and the
dialplan carries it out, so the engine does not hold the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ivr.flows.base import Terminal, node_type
from ivr.route import QueueRoute, Route

if TYPE_CHECKING:
    from ivr.config import Settings


@node_type
class Queue(Terminal):
    """Wait for a seat; the 7×24 ``general`` queue or a skill such as ``expert-hrss``."""

    type: Literal["queue"] = "queue"
    queue: str = Field(description="a queue in config/queues.yaml (a skill such as expert-hrss)")
    priority: int = Field(0, ge=0, le=100, description="higher is answered first")
    ends = "human"

    def config_refs(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        return [(("queue",), "queues", self.queue)]

    def route(self, settings: "Settings") -> Route:
        return QueueRoute(self.queue, self.priority)
