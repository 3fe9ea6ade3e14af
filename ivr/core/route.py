"""Where a call goes when the engine is done with it: the contract with the dialplan.

The engine never holds a call while it waits for a seat or a sub-center: it sets these
channel variables and returns, and ``asterisk-conf/extensions.conf`` ([ivr-route]) carries
the route out. If the engine never sets ``IVR_ROUTE`` (down, crashed, timed out), the
dialplan sends the call to the general 7×24 queue.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GENERAL_QUEUE", "HangupRoute", "QueueRoute", "Route", "TransferRoute"]

GENERAL_QUEUE = "general"  # the 7×24 queue every failure falls back to (queues.model re-exports it)


@dataclass(frozen=True)
class QueueRoute:
    """The call leaves the IVR for a queue (the dialplan waits there, not the engine)."""

    queue: str
    priority: int = 0
    one_key: bool = False  # reached by the one-key-to-human key (queues.priority.Reason.ONE_KEY)

    def variables(self) -> dict[str, str]:
        return {"IVR_QUEUE": self.queue, "IVR_QUEUE_PRIORITY": str(self.priority), "IVR_ROUTE": "queue"}


@dataclass(frozen=True)
class TransferRoute:
    """Dial a sub-center trunk (or, with ``trunk='pstn'``, any outside number such as 110)."""

    trunk: str
    number: str
    ring_timeout: int = 20
    fallback_queue: str = GENERAL_QUEUE
    closed: bool = False  # outside the sub-center's hours: not dialed (transfer/hours.py)

    def variables(self) -> dict[str, str]:
        return {
            "IVR_TRANSFER_CLOSED": "1" if self.closed else "",
            "IVR_TRANSFER_TRUNK": self.trunk,
            "IVR_TRANSFER_NUMBER": self.number,
            "IVR_TRANSFER_TIMEOUT": str(self.ring_timeout),
            "IVR_FALLBACK_QUEUE": self.fallback_queue,
            "IVR_ROUTE": "transfer",
        }


@dataclass(frozen=True)
class HangupRoute:
    def variables(self) -> dict[str, str]:
        return {"IVR_ROUTE": "hangup"}


Route = QueueRoute | TransferRoute | HangupRoute
# IVR_ROUTE is always set last: the dialplan treats it as "the engine finished".
