"""Seats and the queues callers wait in, as admins write them in ``config/queues.yaml``.

12345 promises 7×24 human service: the ``general`` queue must exist and is where every failure
goes. Rendered into Asterisk's queues.conf and pjsip endpoints by :mod:`ivr.asterisk_conf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ivr.strict import Strict

GENERAL_QUEUE = "general"


class Agent(Strict):
    """A seat: one SIP softphone endpoint."""

    name: str = Field(description="display name")
    skills: tuple[str, ...] = ()
    contact: str | None = Field(
        None, description="fixed SIP URI (desk phone); otherwise the softphone registers"
    )


class Queue(Strict):
    """A group of seats callers wait for (7×24 general, or an expert skill)."""

    title: str
    members: tuple[str, ...] = ()
    strategy: Literal["rrmemory", "ringall", "leastrecent", "fewestcalls", "random", "linear"] = (
        "rrmemory"
    )
    ring_timeout: int = Field(15, ge=1, le=120, description="seconds one seat rings")
    max_wait: int = Field(0, ge=0, description="seconds in queue before fallback; 0 = forever")
    fallback: str | None = Field(None, description="queue to try when max_wait runs out")


@dataclass(frozen=True)
class QueueRoute:
    """The call leaves the IVR for a queue (the dialplan waits there, not the engine)."""

    queue: str
    priority: int = 0
    one_key: bool = False  # reached by the one-key-to-human key (queues.priority.Reason.ONE_KEY)

    def variables(self) -> dict[str, str]:
        return {"IVR_QUEUE": self.queue, "IVR_QUEUE_PRIORITY": str(self.priority), "IVR_ROUTE": "queue"}
