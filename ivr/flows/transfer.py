"""``transfer``: to a named sub-center (设分中心, ``config/subcenters.yaml``) or a plain number.

A sub-center brings its own trunk, number, ring timeout and fallback queue; a plain number
goes out over the ``pstn`` trunk, and 110, 119, 120, 122 (the emergency linkage) over the
``emergency`` trunk when one is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ivr.flows.base import Terminal, node_type
from ivr.core.route import GENERAL_QUEUE, Route, TransferRoute
from transfer.model import EMERGENCY_NUMBERS, EMERGENCY_TRUNK

if TYPE_CHECKING:
    from ivr.config import Settings

PSTN_TRUNK = "pstn"


@node_type
class Transfer(Terminal):
    """Exactly one of ``subcenter`` or ``number``."""

    type: Literal["transfer"] = "transfer"
    subcenter: str | None = None
    number: str | None = Field(None, pattern=r"^[0-9]{3,16}$", description="dialed over the 'pstn' trunk")
    ring_timeout: int = Field(30, ge=1, le=120, description="for a plain number; a sub-center has its own")
    fallback_queue: str = Field(GENERAL_QUEUE, description="for a plain number, if nobody answers")
    ends = "human"

    @model_validator(mode="after")
    def _one_target(self) -> "Transfer":
        if (self.subcenter is None) == (self.number is None):
            raise ValueError("give exactly one of subcenter or number")
        return self

    def config_refs(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        if self.subcenter:
            return [(("subcenter",), "subcenters", self.subcenter)]
        return [(("fallback_queue",), "queues", self.fallback_queue)]

    def route(self, settings: "Settings") -> Route:
        if self.subcenter:
            sc = settings.subcenters[self.subcenter]
            return TransferRoute(self.subcenter, sc.number, sc.ring_timeout, sc.fallback_queue)
        assert self.number is not None
        # 应急联动: an emergency number goes over the emergency trunk when there is one
        trunk = EMERGENCY_TRUNK if self.number in EMERGENCY_NUMBERS and settings.emergency else PSTN_TRUNK
        return TransferRoute(trunk, self.number, self.ring_timeout, self.fallback_queue)
