"""Where a call goes when the engine is done with it: the contract with the dialplan.

The engine never holds a call while it waits for a seat or a sub-center: it sets these
channel variables and returns, and ``asterisk-conf/extensions.conf`` ([ivr-route]) carries
the route out. If the engine never sets ``IVR_ROUTE`` (down, crashed, timed out), the
dialplan sends the call to the general 7×24 queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from queues.model import GENERAL_QUEUE, QueueRoute
from transfer.model import TransferRoute

__all__ = ["GENERAL_QUEUE", "HangupRoute", "QueueRoute", "Route", "TransferRoute"]


@dataclass(frozen=True)
class HangupRoute:
    def variables(self) -> dict[str, str]:
        return {"IVR_ROUTE": "hangup"}


Route = QueueRoute | TransferRoute | HangupRoute
# IVR_ROUTE is always set last: the dialplan treats it as "the engine finished".
