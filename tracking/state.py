"""What the tracker keeps of a call while it is up (:class:`Call`) and what it hands the adapter
(:class:`Change`): shared by the tracker and its handler modules (visits, transfers, user
events, reconciliation), which import it instead of the tracker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from tickets.model import AgentAttempt, QueueVisit, Ticket, TimelineEntry, Transfer
from tracking.channels import Directory, Event


@dataclass(frozen=True)
class Change:
    """A ticket write the adapter must make: ``phase`` is ``opened``, ``closed`` or, for a
    queue visit that ended (``visit``), ``queue:<queue>:<n>``; ``final``: no queue follows it."""

    phase: str
    ticket: Ticket
    visit: QueueVisit | None = None
    final: bool = False


@dataclass
class Call:
    """What the tracker knows of one call while it is up."""

    ticket: Ticket
    roles: dict[str, str] = field(default_factory=dict)  # uniqueid → caller / agent / subcenter / other
    live: set[str] = field(default_factory=set)  # uniqueids still up
    dials: dict[str, Transfer] = field(default_factory=dict)  # dialed channel name → its transfer attempt
    ivr_seen: bool = False
    caller_gone_at: float | None = None  # monotonic-free: the event timestamp of the caller's hang-up
    closing_since: float | None = None  # waiting for the IVR record
    channel: str = ""  # the caller's channel name (an IVR record must name it: tracking/records.py)
    opened: bool = True  # its ``opened`` write is made (held back from Newchannel to the first dialplan sign)
    # seat channel uniqueid → its ring that ended at once, until that channel's hang-up says why
    # (tracking/visits.py: a 486 makes it a collision)
    turned_away: dict[str, tuple[AgentAttempt, TimelineEntry]] = field(default_factory=dict)


def open_once(call: Call) -> list[Change]:
    """The call's ``opened`` write, once: at its first sign of life after Newchannel."""
    if call.opened:
        return []
    call.opened = True
    return [Change("opened", call.ticket)]


# An event handler of a followed call: the platform's directory, the call, the event, its time.
Handler = Callable[[Directory, Call, Event, datetime], "list[Change] | None"]
