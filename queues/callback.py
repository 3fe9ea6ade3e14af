"""Queued callback (排队回拨), the policy: one pending callback per number, bounded attempts.

A caller who pressed the callback key has hung up; their place is kept by a stand-in that
waits in the queue (the dialplan's ``[ivr-callback-queue]``). When a seat takes the stand-in,
the citizen is called; if they do not answer, the next attempt waits ``retry_after`` seconds and
joins at the same place again (it has waited longest), until ``attempts`` have been made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from queues.model import Callback

PENDING, PLACED, ANSWERED, FAILED = "pending", "placed", "answered", "failed"


@dataclass
class CallbackRequest:
    """One citizen to call back, as kept in Redis (the engine that places it may be another)."""

    linkedid: str  # the ticket's call
    number: str
    queue: str
    queued_at: str  # when the call first joined a queue (its place in time order)
    priority: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {"at", "result", "agent"}
    status: str = PENDING
    next_at: float = 0.0  # epoch s the next stand-in is placed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CallbackRequest":
        return cls(**data)

    @property
    def attempt(self) -> int:
        """The attempt being made (or next to make), from 1."""
        return len(self.attempts) + 1


def placed(request: CallbackRequest) -> None:
    request.status = PLACED


def result(request: CallbackRequest, dial_status: str, agent: str, at: float, policy: Callback) -> None:
    """One attempt ended: answered (done), or the next attempt is due, or the callback failed."""
    request.attempts.append({"at": at, "result": dial_status, "agent": agent})
    if dial_status == "ANSWER":
        request.status = ANSWERED
    elif len(request.attempts) >= policy.attempts:
        request.status = FAILED
    else:
        request.status, request.next_at = PENDING, at + policy.retry_after


def ticket_view(request: CallbackRequest) -> dict[str, Any]:
    """What the ticket says of its callback (the number stays the caller's: masked by role)."""
    return {"queue": request.queue, "number": request.number, "status": request.status,
            "attempts": [dict(a) for a in request.attempts]}
