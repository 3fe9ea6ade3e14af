"""Longest waiting caller across nodes (docs/cluster.md): the order inversions a set of tickets
shows. An inversion is a call *j* connected at *t_j* while a caller *i* of the same queue, with the
same priority, who first joined earlier, was still waiting at *t_j* on another node. Collisions (the
losing node's ``AgentRingNoAnswer`` with ``RingTime`` 0 after the proxy's 486) come from AMI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping


@dataclass
class QueueOrder:
    answered: int = 0
    inverted: int = 0  # answers that overtook an earlier caller waiting on another node
    largest_jump_s: float = 0.0  # the most a caller was overtaken by (queued_j - queued_i)

    @property
    def share(self) -> float:
        return self.inverted / self.answered if self.answered else 0.0


def order_inversions(tickets: list[Any], node_of: Callable[[str], str]) -> dict[str, QueueOrder]:
    """Per queue, from the tickets' first join (``queued``), connect time (``answered``), end
    (``ended``: a caller who never connected waited until then), ``priority`` and node."""
    calls = [(t.queue, t.priority, _at(t.queued), _at(t.answered) if t.answered else None,
              _at(t.answered or t.ended), node_of(t.linkedid)) for t in tickets if t.queue and t.queued]
    out: dict[str, QueueOrder] = defaultdict(QueueOrder)
    for queue, prio, queued_j, connected_j, _end, node_j in calls:
        if connected_j is None:
            continue
        order = out[queue]
        order.answered += 1
        jumps = [(queued_j - queued_i).total_seconds() for q, p, queued_i, _c, waited_until, node_i in calls
                 if q == queue and p == prio and node_i != node_j and queued_i < queued_j
                 and waited_until > connected_j]
        if jumps:
            order.inverted += 1
            order.largest_jump_s = max(order.largest_jump_s, max(jumps))
    return dict(out)


def collisions(events: list[Mapping[str, str]]) -> dict[str, int]:
    """Per seat, the offers the proxy turned away (486 at once: ``RingTime`` 0)."""
    out: dict[str, int] = defaultdict(int)
    for e in events:
        if e.get("Event") == "AgentRingNoAnswer" and e.get("RingTime") == "0":
            out[e.get("Interface", "").removeprefix("PJSIP/")] += 1
    return dict(out)


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)
