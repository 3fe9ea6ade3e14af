"""Which caller a seat answers first: one policy over the reasons a queued call has.

A call waits in an Asterisk queue with one number, its priority (higher is answered first,
time order within a priority). The reasons it may have, from the route itself up:

- ``route``: the queue node's own ``priority`` (a flow may rank one of its queues);
- ``one_key``: the caller pressed the menu's one-key-to-human (一键转人工) key;
- ``repeat``: the caller has an open ticket from the last ``tickets.repeat_days``;
- ``elderly``: the caller's number is on the registered elderly list (适老化).

The call gets the highest priority among its reasons (they do not add up: three reasons do
not outrank an elderly caller by accident), and the reason that gave it is recorded on the
channel, the CDR and the ticket. All numbers live in the ``priority:`` block of
``config/queues.yaml``; nothing else decides a queue priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable

from pydantic import Field

from ivr.core.strict import Strict

MAX_PRIORITY = 100


class Reason(StrEnum):
    """Why a call waits with a raised priority; in the order ties are decided (first wins)."""

    ELDERLY = "elderly"
    REPEAT = "repeat"
    ONE_KEY = "one_key"
    ROUTE = "route"


REASON_LABELS = {
    Reason.ELDERLY: "适老化优先",
    Reason.REPEAT: "重复来电（未办结工单）",
    Reason.ONE_KEY: "一键转人工",
    Reason.ROUTE: "流程设定",
}


def priority_label(reason: str) -> str:
    """The Mandarin label of a reason as stored on a ticket ("" for an unknown one)."""
    try:
        return REASON_LABELS[Reason(reason)]
    except ValueError:
        return ""


class ElderlySettings(Strict):
    """Registered elderly callers (适老化): no menu, a short greeting, a human first."""

    priority: int = Field(10, ge=0, le=MAX_PRIORITY)
    flow: str = Field(
        "elderly", description="the flow an elderly caller runs instead of the line's own (no menu in it)"
    )


class PrioritySettings(Strict):
    """The ``priority:`` block: the priority each reason gives a queued call (0: no raise)."""

    one_key: int = Field(5, ge=0, le=MAX_PRIORITY, description="caller pressed the one-key-to-human key")
    repeat: int = Field(5, ge=0, le=MAX_PRIORITY, description="caller has an open ticket of the last repeat_days")
    elderly: ElderlySettings = ElderlySettings()

    def of(self, reason: Reason) -> int:
        if reason is Reason.ELDERLY:
            return self.elderly.priority
        if reason is Reason.REPEAT:
            return self.repeat
        if reason is Reason.ONE_KEY:
            return self.one_key
        raise ValueError(f"{reason} has no configured priority: it is the route's own")


@dataclass(frozen=True)
class Decision:
    """A queued call's priority and why: ``reason`` gave it (None: nothing raised it, priority
    0); ``reasons`` are every reason the call had, strongest first (an elderly caller is
    recorded as one even where the elderly priority is configured 0)."""

    priority: int
    reason: Reason | None
    reasons: tuple[Reason, ...]

    def variables(self) -> dict[str, str]:
        """For the dialplan and the CDR (``IVR_QUEUE_PRIORITY`` comes with the route)."""
        return {"IVR_PRIORITY_REASON": self.reason.value if self.reason else ""}


def decide(settings: PrioritySettings, route_priority: int, reasons: Iterable[Reason]) -> Decision:
    """The highest priority among the call's reasons; on a tie the earlier :class:`Reason`."""
    given = {r: settings.of(r) for r in set(reasons) - {Reason.ROUTE}}
    if route_priority > 0:
        given[Reason.ROUTE] = route_priority
    order = list(Reason)
    ranked = tuple(sorted(given, key=lambda r: (-given[r], order.index(r))))
    if not ranked or given[ranked[0]] == 0:
        return Decision(0, None, ranked)
    return Decision(given[ranked[0]], ranked[0], ranked)
