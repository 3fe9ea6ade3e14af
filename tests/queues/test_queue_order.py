"""Order inversions and seat collisions from tickets (queues/order.py; docs/cluster.md "Longest
waiting caller across nodes"): who overtook whom across nodes, per day and queue, and how far."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Callable

import pytest

from queues.order import across_nodes, node_by_prefix, order_inversions, seat_collisions, stays
from tickets.model import QueueVisit, SeatCollision, Ticket

T0 = datetime(2026, 12, 1, 10, 0).astimezone()
NODES = ["ast-a", "ast-b"]
node_of = node_by_prefix(NODES)


def at(s: float) -> str:
    return (T0 + timedelta(seconds=s)).isoformat(timespec="milliseconds")


def call(n: int, node: str, queued: float, *, answered: float | None = None, ended: float | None = None,
         queue: str = "general", priority: int = 0, visits: list[QueueVisit] | None = None) -> Ticket:
    """A ticket of ``node`` that joined ``queue`` at ``queued`` s and was answered (or stopped
    waiting: ``ended``); still waiting when neither is given."""
    t = Ticket(linkedid=f"{node}-1796000000.{n}", line="12345", caller="13900000001", received=at(queued - 5),
               queued=at(queued), queue=queue, priority=priority)
    if visits is not None:
        t.queue_visits = visits
    else:
        v = QueueVisit(queue, at(queued))
        if answered is not None:
            t.answered = at(answered)
            v.left, v.outcome, v.wait_seconds = at(answered), "answered", answered - queued
        elif ended is not None:
            v.left, v.outcome, v.wait_seconds = at(ended), "abandoned", ended - queued
        t.queue_visits = [v]
    if ended is not None or answered is not None:
        t.ended = at(ended if ended is not None else (answered or 0) + 60)
    return t


def general(tickets: list[Ticket]) -> tuple[int, int, float]:
    [(key, o)] = order_inversions(tickets, node_of).items()
    assert key == (T0.strftime("%Y-%m-%d"), "general")
    return o.answered, o.inverted, round(o.largest_jump_s, 3)


def test_an_answer_on_a_while_an_earlier_caller_waits_on_b_is_an_inversion_by_the_difference_in_first_joins() -> None:
    assert general([call(1, "ast-b", 0, answered=30), call(2, "ast-a", 10, answered=20)]) == (2, 1, 10.0)


@pytest.mark.parametrize("earlier", [
    call(1, "ast-a", 0, answered=30),  # the same node: app_queue's own order, not overtaken across nodes
    call(1, "ast-b", 0, answered=30, priority=5),  # another priority: not the same line
    call(1, "ast-b", 0, ended=15),  # had hung up before the answer
    call(1, "ast-b", 0, answered=20),  # answered in the same instant: not waiting any more
    call(1, "ast-b", 12, answered=30),  # joined after the answered caller
    call(1, "ast-b", 0, answered=30, queue="expert-hrss"),  # another queue
], ids=["same-node", "other-priority", "gone-before", "answered-together", "joined-later", "other-queue"])
def test_no_inversion_when_the_earlier_caller_was_not_overtaken(earlier: Ticket) -> None:
    result = order_inversions([earlier, call(2, "ast-a", 10, answered=20)], node_of).values()
    assert sum(o.answered for o in result) == 1 + bool(earlier.answered)
    assert all(o.inverted == 0 for o in result)


def test_the_largest_jump_is_the_earliest_caller_overtaken_and_a_caller_still_waiting_counts() -> None:
    tickets = [call(1, "ast-b", 0), call(2, "ast-b", 4, answered=50), call(3, "ast-a", 9, answered=20),
               call(4, "ast-a", 15, answered=25)]
    assert general(tickets) == (3, 2, 15.0)  # 3 overtook 1 and 2 (9 s), 4 overtook 1 (15 s); 2 overtook no one


def test_an_overflowed_caller_is_overtaken_only_once_in_the_queue_and_by_its_first_join() -> None:
    """Caller 1 joined the expert queue at 0 and overflowed into general at 25: an answer in
    general at 20 did not overtake it there; one at 30 did, by 12 s (its first join at 0)."""
    visits = [QueueVisit("expert-hrss", at(0), at(25), "overflowed", 25.0),
              QueueVisit("general", at(25), at(40), "answered", 15.0, "agent1001")]
    first = call(1, "ast-b", 0, answered=40, visits=visits)
    result = order_inversions([first, call(2, "ast-a", 10, answered=20), call(3, "ast-a", 12, answered=30)], node_of)
    o = result[(T0.strftime("%Y-%m-%d"), "general")]
    assert (o.answered, o.inverted, o.largest_jump_s) == (3, 1, 12.0)
    assert (T0.strftime("%Y-%m-%d"), "expert-hrss") not in result  # no answer there


def test_answers_are_counted_in_the_window_asked_and_by_the_day_they_were_answered() -> None:
    midnight = T0.replace(hour=0) + timedelta(days=1)
    late = (midnight - T0).total_seconds()
    tickets = [call(1, "ast-b", late - 30, answered=late + 30), call(2, "ast-a", late - 20, answered=late - 10),
               call(3, "ast-a", late - 10, answered=late + 10)]
    by_day = order_inversions(tickets, node_of)
    assert {k: (o.answered, o.inverted) for k, o in by_day.items()} == {
        (T0.strftime("%Y-%m-%d"), "general"): (1, 1), (midnight.strftime("%Y-%m-%d"), "general"): (2, 1)}
    next_day = order_inversions(tickets, node_of, since=midnight, until=midnight + timedelta(days=1))
    assert [(o.answered, o.inverted, o.largest_jump_s) for o in next_day.values()] == [(2, 1, 20.0)]


def test_a_call_of_no_known_node_is_left_out_and_the_longest_node_name_wins() -> None:
    of = node_by_prefix(["ast-b", "ast-b-2", "ast-a"])
    assert (of("ast-b-2-1796000000.7"), of("ast-b-1796000000.7"), of("other-1796000000.7"), of("1796000000.7")) == (
        "ast-b-2", "ast-b", "", "")
    stranger = call(1, "other", 0, answered=30)
    assert general([stranger, call(2, "ast-a", 10, answered=20)]) == (1, 0, 0.0)
    assert across_nodes(NODES) and not across_nodes(["ast-a"]) and not across_nodes([])


def test_a_ticket_without_visits_is_read_from_its_summary() -> None:
    old = call(1, "ast-b", 0, answered=30)
    old.queue_visits = []
    [s] = stays(old, "ast-b")
    assert (s.queue, s.connected, s.until) == ("general", s.until, s.queued + 30)
    assert general([old, call(2, "ast-a", 10, answered=20)]) == (2, 1, 10.0)


def brute_force(tickets: list[Ticket], of: Callable[[str], str]) -> dict[str, tuple[int, int, float]]:
    """The definition, pair by pair (O(n²)): what the heap sweep must agree with."""
    all_stays = [s for t in tickets for s in stays(t, of(t.linkedid))]
    out: dict[str, tuple[int, int, float]] = {}
    for j in all_stays:
        if j.connected is None:
            continue
        jumps = [j.queued - i.queued for i in all_stays if i.queue == j.queue and i.priority == j.priority
                 and i.node != j.node and i.queued < j.queued and i.joined <= j.connected < i.until]
        answered, inverted, jump = out.get(j.queue, (0, 0, 0.0))
        out[j.queue] = (answered + 1, inverted + bool(jumps), round(max([jump, *jumps]), 3))
    return out


def test_the_sweep_agrees_with_the_definition_pair_by_pair_on_random_traffic() -> None:
    rng = random.Random(20)
    tickets = []
    for n in range(400):
        queued = rng.uniform(0, 3000)
        wait = rng.expovariate(1 / 40)
        kind = rng.random()  # 80 % answered, 15 % hung up, the rest still waiting
        tickets.append(call(n, rng.choice([*NODES, "ast-c"]), queued, queue=rng.choice(["general", "expert-hrss"]),
                            priority=rng.choice([0, 0, 0, 5]), answered=queued + wait if kind < 0.8 else None,
                            ended=queued + wait if 0.8 <= kind < 0.95 else None))
    three = node_by_prefix([*NODES, "ast-c"])
    expected = brute_force(tickets, three)
    got = {q: (o.answered, o.inverted, round(o.largest_jump_s, 3)) for (_d, q), o in order_inversions(tickets, three).items()}
    assert got == expected and all(inverted for _a, inverted, _j in expected.values())


def test_collisions_are_counted_per_seat_in_the_window() -> None:
    t1, t2 = call(1, "ast-a", 0, answered=20), call(2, "ast-b", 5, answered=40)
    t1.seat_collisions = [SeatCollision("agent1001", at(19.5))]
    t2.seat_collisions = [SeatCollision("agent1001", at(30)), SeatCollision("agent1002", at(35)),
                          SeatCollision("agent1002", at(4000))]
    assert seat_collisions([t1, t2]) == {"agent1001": 2, "agent1002": 2}
    assert seat_collisions([t1, t2], since=T0, until=T0 + timedelta(seconds=3600)) == {"agent1001": 2, "agent1002": 1}
