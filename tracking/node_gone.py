"""Calls lost with their Asterisk node (issue 20, docs/cluster.md "When a node dies"): the rules.

A node that died and did not come back leaves tickets that no follower will ever close: its
follower (if it still runs) has no AMI, Asterisk wrote no CDR for calls it never ended, and a
restart that never comes cannot be reconciled. The engine holding the cluster's ``nodes`` lease
closes them (:mod:`ivr.node_watch`); what it decides is here, pure:

- which open tickets are the node's (:func:`of_node`: Asterisk prefixes ``uniqueid``, hence
  ``linkedid``, with the node's ``systemname``);
- where each caller was when the node died (:func:`place`: waiting in a queue, talking to a
  seat, or else in the menus), from what the live follower last published;
- the close itself (:func:`close`): disposition ``node_lost``, a queue stay that was still
  open ended as ``node_lost`` (its service-level counts, once, under the phase name the
  follower would give it), the same ``closed`` phase every other close writes, so a follower
  that comes back later and closes the call again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tickets.model import Disposition, QueueVisit, Ticket, VisitOutcome
from tracking.channels import iso
from tracking.state import Change
from tracking.visits import end_visit, waiting

IVR, WAITING, TALKING = "ivr", "waiting", "talking"
CAUSE = "lost with its Asterisk node"  # hangup_cause of such a ticket (the node's name follows)


@dataclass(frozen=True)
class Seen:
    """Where the live follower last saw a call of the node: ``queue`` and ``joined`` (epoch s) while
    it waited, ``agent`` while it talked to a seat (both empty: in the menus)."""

    queue: str = ""
    joined: float = 0.0
    agent: str = ""


def of_node(linkedid: str, node: str) -> bool:
    """Whether the call ``linkedid`` ran on ``node`` (its ``systemname``); ``node`` "" is the one
    node of a platform without a cluster section: every call is its."""
    return not node or linkedid.startswith(f"{node}-")


def place(seen: Seen | None) -> str:
    """``waiting``, ``talking`` or ``ivr`` (never seen in a queue or at a seat: the menus)."""
    if seen is None:
        return IVR
    if seen.agent:
        return TALKING
    return WAITING if seen.queue else IVR


def close(ticket: Ticket, seen: Seen | None, node: str, now: datetime) -> list[Change]:
    """Close an open ticket as lost to the node failure; its open queue stay ends with it. Returns
    the writes (the visit's, then ``closed``); none for a ticket already closed."""
    if ticket.closed:
        return []
    at = iso(now)
    where = place(seen)
    changes: list[Change] = []
    if where == WAITING and seen is not None:
        joined = iso(datetime.fromtimestamp(seen.joined).astimezone()) if seen.joined else ""
        ticket.queue, ticket.queued = seen.queue, ticket.queued or joined
        visit = waiting(ticket)
        if visit is None or visit.queue != seen.queue:
            visit = QueueVisit(seen.queue, joined)
            ticket.queue_visits.append(visit)
        ticket.wait_seconds = _since(ticket.queued, now)
        changes += end_visit(ticket, visit, VisitOutcome.NODE_LOST, now, None, final=True)
    elif where == TALKING and seen is not None:
        ticket.agent = ticket.agent or seen.agent  # answered already: its visit was counted at the answer
    ticket.ended = at
    ticket.disposition, ticket.after_transfer, ticket.closed_by = Disposition.NODE_LOST.value, "", "node"
    ticket.hangup_by, ticket.hangup_cause = "system", f"{CAUSE} {node}".strip()
    ticket.note(at, "lost with its node", f"{node or 'Asterisk'} gone while the caller was {_WHERE[where]}")
    return [*changes, Change("closed", ticket)]


_WHERE = {IVR: "in the menus", WAITING: "waiting in a queue", TALKING: "talking to a seat"}


def _since(queued: str, now: datetime) -> float | None:
    try:
        return max(0.0, (now - datetime.fromisoformat(queued)).total_seconds()) if queued else None
    except ValueError:
        return None
