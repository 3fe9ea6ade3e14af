"""The dialplan's ``UserEvent``\\ s (asterisk-conf/extensions.conf), one handler per kind.

:data:`USER_EVENTS` maps each kind to (must it come from the caller's own channel?, handler):
a table instead of an if-ladder, with the same meaning — each kind has exactly one handler, and
an event of an unknown kind, or from another channel when the caller's own is required, is
ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from ivr.core.channel import endpoint_of
from queues.callback import refusal
from tickets.model import OutOfScope, Ticket, VisitOutcome
from tracking.channels import Directory, Event, iso
from tracking.state import Call, Change
from tracking.transfers import ivr_bridge, ivr_transfer
from tracking.visits import end_visit, overflowed, waiting

UserHandler = Callable[[Directory, Ticket, Event, datetime], "list[Change] | None"]


def user_event(directory: Directory, call: Call, event: Event, at: datetime) -> list[Change] | None:
    """Dispatch a ``UserEvent`` of a followed call by its kind."""
    entry = USER_EVENTS.get(event.get("UserEvent", ""))
    if entry is None:
        return None
    own_channel_only, handler = entry
    if own_channel_only and event.get("Uniqueid") != call.ticket.linkedid:
        return None
    return handler(directory, call.ticket, event, at)


def overflow(directory: Directory, t: Ticket, event: Event, at: datetime) -> list[Change]:
    """The dialplan sends the caller on (max_wait, no seat)."""
    t.note(iso(at), "queue overflow", f"{event.get('Queue', '')} → {event.get('Overflow', '')} "
                                      f"({event.get('Reason', '')})")
    return overflowed(t, final=False)


def callback(directory: Directory, t: Ticket, event: Event, at: datetime) -> list[Change] | None:
    """A callback requested from the queue (its other stages are the callback worker's)."""
    if event.get("Stage") != "requested":
        return None
    queue, number = event.get("Queue", ""), event.get("Number", "")
    why = refusal(directory.callers, directory.callback_queues, number, queue)
    t.callback = {"requested": iso(at), "queue": queue, "number": number, "status": "refused" if why else "pending",
                  "attempts": [], **({"reason": why} if why else {})}
    if why:  # the engine places nothing either (ivr/callback.py): the caller is not kept waiting
        t.note(iso(at), "callback refused", why)
        return None
    t.note(iso(at), "callback requested", f"{event.get('Queue', '')} (place kept)")
    visit = waiting(t)
    return end_visit(t, visit, VisitOutcome.CALLBACK, at, None) if visit else []


def platform(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    """Handed to us by another platform, with its ticket."""
    t.from_platform, t.from_ticket = event.get("Platform", ""), event.get("Ticket", "")
    t.note(iso(at), "from platform", f"{t.from_platform}: ticket {t.from_ticket or '?'}")


def agent_out_of_scope(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    """The agent's feature key (the caller's channel runs it)."""
    out_of_scope(directory, t, event.get("Matter", ""), "agent", iso(at), endpoint_of(event.get("Agent", "")))


def survey(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    t.satisfaction_status = "no_rating"  # until a key says otherwise
    t.note(iso(at), "satisfaction asked")


def satisfaction(directory: Directory, t: Ticket, event: Event, at: datetime) -> None:
    if event.get("Context") != "ivr-survey":
        return
    rating = event.get("Rating", "")
    if rating in ("1", "2", "3", "4", "5"):
        t.satisfaction, t.satisfaction_status = int(rating), "rated"
    else:
        t.satisfaction, t.satisfaction_status = None, "no_rating"
    t.note(iso(at), "satisfaction", rating or "no rating")


def out_of_scope(directory: Directory, t: Ticket, matter: str, by: str, at: str, agent: str = "") -> None:
    """The caller was told their matter is not 12345's; the first time counts."""
    if t.out_of_scope is None and matter:
        t.out_of_scope = OutOfScope(matter, directory.matters.get(matter, ""), by, at, agent)
        t.note(at, "out of scope", f"{matter} ({by})")


USER_EVENTS: dict[str, tuple[bool, UserHandler]] = {
    "IvrOverflow": (True, overflow),
    "IvrCallback": (True, callback),
    "IvrTransfer": (False, ivr_transfer),
    "IvrBridge": (False, ivr_bridge),
    "IvrPlatform": (True, platform),
    "IvrOutOfScope": (True, agent_out_of_scope),
    "IvrSurvey": (True, survey),
    "IvrSatisfaction": (True, satisfaction),
}
