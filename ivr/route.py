"""Where a call goes when the engine is done with it: the contract with the dialplan.

The engine never holds a call while it waits for a seat or a sub-center: it sets these
channel variables and returns, and ``asterisk-conf/extensions.conf`` ([ivr-route]) carries
the route out. If the engine never sets ``IVR_ROUTE`` (down, crashed, timed out), the
dialplan sends the call to the general 7×24 queue.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERAL_QUEUE = "general"


@dataclass(frozen=True)
class QueueRoute:
    queue: str
    priority: int = 0

    def variables(self) -> dict[str, str]:
        return {"IVR_QUEUE": self.queue, "IVR_QUEUE_PRIORITY": str(self.priority), "IVR_ROUTE": "queue"}


@dataclass(frozen=True)
class TransferRoute:
    """Dial a sub-center trunk (or, with ``trunk='pstn'``, any outside number such as 110)."""

    trunk: str
    number: str
    ring_timeout: int = 20
    fallback_queue: str = GENERAL_QUEUE

    def variables(self) -> dict[str, str]:
        return {
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
