"""``hangup``: end the call, usually after ``goodbye``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ivr.flows.base import Terminal, node_type
from ivr.core.route import HangupRoute, Route

if TYPE_CHECKING:
    from ivr.config import Settings


@node_type
class Hangup(Terminal):
    """Say the optional prompt, then hang up."""

    type: Literal["hangup"] = "hangup"
    ends = "hangup"

    def route(self, settings: "Settings") -> Route:
        return HangupRoute()
