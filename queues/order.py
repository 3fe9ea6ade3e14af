"""Longest waiting caller across nodes: not guaranteed, measured (docs/cluster.md).

Each node's app_queue orders only its own callers; when a seat frees, whichever node rings it
first gets it. An **order inversion** is an answer that overtook an earlier caller: call *j* of
a queue connected at *t_j* while a caller *i* of the same queue and priority, who first joined
earlier (the ticket's ``queued``: the first join, which ``IVR_QUEUED_AT`` keeps across queues),
was still waiting in that queue at *t_j* on another node. Counted per day (of the answer) and
queue: the answers, the inverted ones and the largest jump (*queued_j − queued_i*, seconds).

A **collision** is the losing side of the race for a seat: the proxy's seat lock answered 486 to
the node that rang second (``Ticket.seat_collisions``, written by tracking/visits.py); counted
per seat.

Pure: the tickets and the node of each call come in as parameters. On a platform of one node
there is no other node to overtake on: no inversion exists by definition, and :func:`across_nodes`
says so rather than a 0 that looks measured.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from tickets.model import Ticket, VisitOutcome

NodeOf = Callable[[str], str]  # linkedid → the node (Asterisk's systemname) that made it; "" unknown


@dataclass
class QueueOrder:
    """One queue's answers on one day, and how many overtook an earlier caller on another node."""

    answered: int = 0
    inverted: int = 0
    largest_jump_s: float = 0.0  # the most an answer overtook by (queued_j − queued_i)

    @property
    def share(self) -> float | None:
        return round(self.inverted / self.answered, 4) if self.answered else None

    def to_json(self) -> dict[str, float | int | None]:
        return {"answered": self.answered, "inverted": self.inverted, "share": self.share,
                "largest_jump_s": round(self.largest_jump_s, 3)}


@dataclass(frozen=True)
class Stay:
    """One call's stay in one queue, as the counting needs it (epoch seconds)."""

    queue: str
    priority: int
    queued: float  # the call's first join (its place in time order, kept across queues)
    joined: float  # when it joined this queue
    until: float  # when it stopped waiting here (answer, hang-up, overflow); inf: still waiting
    connected: float | None  # answered here at this moment
    node: str


def across_nodes(node_names: Iterable[str]) -> bool:
    """Whether inversions can exist at all: two nodes or more."""
    return len(set(node_names)) >= 2


def node_by_prefix(node_names: Iterable[str]) -> NodeOf:
    """The node whose ``systemname`` prefixes a linkedid (``ast-b-1733.7``), the longest name
    first so ``ast-b`` is not taken for ``ast-b-2``'s call; "" for none."""
    names = sorted(set(node_names), key=len, reverse=True)

    def node_of(linkedid: str) -> str:
        return next((n for n in names if linkedid.startswith(f"{n}-")), "")
    return node_of


def stays(t: Ticket, node: str) -> list[Stay]:
    """The ticket's stays in queues (its visits; a ticket without visits: one, from its summary)."""
    queued = _epoch(t.queued)
    if queued is None:
        return []
    priority = t.priority or 0
    out = []
    for v in t.queue_visits or []:
        joined = _epoch(v.joined)
        if joined is None:
            continue
        answered = v.outcome == VisitOutcome.ANSWERED
        if answered and v.wait_seconds is not None:
            end: float | None = joined + v.wait_seconds  # the AgentConnect itself
        elif v.left:
            end = _epoch(v.left)
        else:
            end = _epoch(t.ended) if v.outcome else None  # neither ended nor left: still waiting
        until = float("inf") if end is None else end
        out.append(Stay(v.queue, priority, queued, joined, until, until if answered and end is not None else None, node))
    if not t.queue_visits and t.queue:
        answered_at = _epoch(t.answered)
        ended = _epoch(t.ended)
        until = answered_at if answered_at is not None else (ended if ended is not None else float("inf"))
        out.append(Stay(t.queue, priority, queued, queued, until, answered_at, node))
    return out


def order_inversions(tickets: Iterable[Ticket], node_of: NodeOf, *, since: datetime | None = None,
                     until: datetime | None = None) -> dict[tuple[str, str], QueueOrder]:
    """(day, queue) → its :class:`QueueOrder`, for the answers connected in [since, until) (all
    when not given). Every ticket is a possible earlier caller, so pass those received a while
    before ``since`` too. A call whose node is unknown ("") is left out on both sides."""
    return count_inversions((s for t in tickets if (node := node_of(t.linkedid)) for s in stays(t, node)),
                            since=since, until=until)


def count_inversions(all_stays: Iterable[Stay], *, since: datetime | None = None,
                     until: datetime | None = None) -> dict[tuple[str, str], QueueOrder]:
    """:func:`order_inversions` from the stays. Per queue and priority, the answers in time order;
    the callers waiting at each answer are kept in a heap per node, smallest first join on top
    (O(n log n): a day of a provincial hotline is tens of thousands of calls)."""
    groups: dict[tuple[str, int], list[Stay]] = defaultdict(list)
    for s in all_stays:
        groups[(s.queue, s.priority)].append(s)
    lo, hi = _bounds(since, until)
    out: dict[tuple[str, str], QueueOrder] = defaultdict(QueueOrder)
    for (queue, _priority), group in groups.items():
        by_join = sorted(group, key=lambda s: s.joined)
        answers = sorted((s for s in group if s.connected is not None and lo <= s.connected < hi),
                         key=lambda s: s.connected or 0.0)
        waiting: dict[str, list[tuple[float, float]]] = defaultdict(list)  # node → heap of (queued, until)
        joined = 0
        for j in answers:
            at = j.connected or 0.0
            while joined < len(by_join) and by_join[joined].joined <= at:
                s = by_join[joined]
                heapq.heappush(waiting[s.node], (s.queued, s.until))
                joined += 1
            earliest = None
            for node, heap in waiting.items():
                if node == j.node:
                    continue
                while heap and heap[0][1] <= at:  # stopped waiting by now (answers come in time order)
                    heapq.heappop(heap)
                if heap and (earliest is None or heap[0][0] < earliest):
                    earliest = heap[0][0]
            order = out[(datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d"), queue)]
            order.answered += 1
            if earliest is not None and earliest < j.queued:
                order.inverted += 1
                order.largest_jump_s = max(order.largest_jump_s, j.queued - earliest)
    return dict(sorted(out.items()))


def collisions_of(t: Ticket) -> list[tuple[str, float]]:
    """(seat, epoch s) of each offer of this call the proxy turned away."""
    return [(c.agent, at) for c in t.seat_collisions if (at := _epoch(c.at)) is not None]


def seat_collisions(tickets: Iterable[Ticket], *, since: datetime | None = None,
                    until: datetime | None = None) -> dict[str, int]:
    """Seat → the offers of these calls the proxy turned away (the seat taken on another node)."""
    return count_collisions((c for t in tickets for c in collisions_of(t)), since=since, until=until)


def count_collisions(collisions: Iterable[tuple[str, float]], *, since: datetime | None = None,
                     until: datetime | None = None) -> dict[str, int]:
    lo, hi = _bounds(since, until)
    out: dict[str, int] = defaultdict(int)
    for seat, at in collisions:
        if lo <= at < hi:
            out[seat] += 1
    return dict(sorted(out.items()))


def report(all_stays: list[Stay], collisions: list[tuple[str, float]], node_names: Iterable[str], *,
           since: datetime, until: datetime) -> dict[str, Any]:
    """What ``ivr stats`` and the console show for one window (plain data): the inversions per
    day and queue — or, on one node, ``across_nodes`` false and none (none can exist, none was
    measured) — and the collisions per seat."""
    nodes = sorted(set(node_names))
    rows = [{"day": day, "queue": queue, **o.to_json()}
            for (day, queue), o in count_inversions(all_stays, since=since, until=until).items()] \
        if across_nodes(nodes) else []
    return {"across_nodes": across_nodes(nodes), "nodes": nodes, "queues": rows,
            "collisions": count_collisions(collisions, since=since, until=until)}


def _bounds(since: datetime | None, until: datetime | None) -> tuple[float, float]:
    return (since.timestamp() if since else float("-inf"), until.timestamp() if until else float("inf"))


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None
