"""The seats everyone reads, composed from every node's own view (queues/agents.py ``compose``,
queues/store.py): the busiest view wins and says which node the seat talks on; each node's
follower writes only its own view, so two nodes never overwrite each other's; a node whose view
expired (its follower gone) drops out. The store runs on a real Redis."""

from __future__ import annotations

from typing import Any

from ivr.store import keyspace
from queues.agents import Seat, compose
from queues.store import SeatStore
from tests.queues.test_agents import NOW, board, member

A, B = "127.0.0.1:5038", "127.0.0.1:6038"


def view(*events: dict[str, str]) -> dict[str, Any]:
    b = board()
    for event in events:
        b.handle(event, NOW)
    return b.seats["agent1001"].to_json(NOW)


TALKING = view(member("QueueMemberAdded", "agent1001"), member("QueueMemberStatus", "agent1001", InCall="1", Status="2"))
WRAP_PAUSED = view(member("QueueMemberAdded", "agent1001", Paused="1", PausedReason="后处理"))
AVAILABLE = view(member("QueueMemberAdded", "agent1001"))


def test_given_a_seat_talking_on_a_and_paused_on_b_then_it_is_talking_on_a() -> None:
    seat = compose({B: WRAP_PAUSED, A: TALKING}, NOW)
    assert (seat["state"], seat["node"], seat["nodes"]) == ("talking", A, {A: "talking", B: "paused"})
    assert Seat.from_json(seat).state(NOW) == "talking"


def test_given_a_seat_available_on_one_node_and_paused_on_the_other_then_it_is_available_nowhere_talking() -> None:
    seat = compose({A: AVAILABLE, B: WRAP_PAUSED}, NOW)
    assert (seat["state"], seat["node"]) == ("available", "")


async def test_given_two_nodes_publishing_then_neither_overwrites_the_other(redis_url: str) -> None:
    a, b = SeatStore(redis_url, node=A), SeatStore(redis_url, node=B)
    try:
        await a.replace({"agent1001": TALKING})
        await b.replace({"agent1001": WRAP_PAUSED})  # B rebuilt from its QueueStatus: A's view stays
        seat = (await a.all())["agent1001"]
        assert (seat["state"], seat["node"]) == ("talking", A)
        await a.save({"agent1001": AVAILABLE})  # the call on A ended
        seat = (await b.all())["agent1001"]
        assert (seat["state"], seat["nodes"]) == ("available", {A: "available", B: "paused"})

        await b.redis.delete(keyspace.seats_of_node(A))  # A's view expired: its follower is gone
        await b.save({"agent1001": WRAP_PAUSED})
        seat = (await b.all())["agent1001"]
        assert (seat["state"], seat["nodes"]) == ("paused", {B: "paused"})
        assert await b.redis.smembers(keyspace.SEAT_NODES) == {B}

        await a.save({"agent1001": TALKING})
        await a.drop_node()  # A's engine stops following it
        seat = (await b.all())["agent1001"]
        assert (seat["state"], seat["nodes"]) == ("paused", {B: "paused"})
        await b.drop_node()
        assert await b.all() == {}
    finally:
        await a.close()
        await b.close()


def test_given_a_seat_in_use_on_both_nodes_by_device_state_then_it_talks_where_its_member_is_in_the_call() -> None:
    in_use = view(member("QueueMemberAdded", "agent1001"), member("QueueMemberStatus", "agent1001", InCall="0", Status="2"))
    assert Seat.from_json(in_use).state(NOW) == "talking"  # the shared device state alone says so
    for a_view, b_view, holder in ((in_use, TALKING, B), (TALKING, in_use, A)):
        seat = compose({A: a_view, B: b_view}, NOW)
        assert (seat["state"], seat["node"]) == ("talking", holder)


def test_the_node_that_connected_the_call_holds_the_seat_until_the_agent_completes_it() -> None:
    in_use = member("QueueMemberStatus", "agent1001", InCall="0", Status="2")
    connect = {"Event": "AgentConnect", "Queue": "q-general", "Interface": "PJSIP/agent1001", "MemberName": "agent1001"}
    holding = view(member("QueueMemberAdded", "agent1001"), in_use, connect)
    other = view(member("QueueMemberAdded", "agent1001"), in_use)
    assert compose({A: other, B: holding}, NOW)["node"] == B
    done = view(member("QueueMemberAdded", "agent1001"), in_use, connect, {**connect, "Event": "AgentComplete"})
    assert not any(q["in_call"] for q in done["queues"].values())
    assert view(connect)["queues"] == {}  # a connect for a seat not in that queue adds no membership


def test_a_device_state_change_during_the_call_keeps_the_member_in_it() -> None:
    connect = {"Event": "AgentConnect", "Queue": "q-general", "Interface": "PJSIP/agent1001", "MemberName": "agent1001"}
    later = member("QueueMemberStatus", "agent1001", InCall="0", Status="2")
    held = view(member("QueueMemberAdded", "agent1001"), connect, later)
    assert all(q["in_call"] for q in held["queues"].values())
    ended = view(member("QueueMemberAdded", "agent1001"), connect, {**later, "LastCall": str(int(NOW) + 1)})
    assert not any(q["in_call"] for q in ended["queues"].values())  # app_queue ended it: LastCall moved


def test_a_queue_status_snapshot_during_the_call_keeps_the_member_in_it() -> None:
    b = board()
    b.handle(member("QueueMemberAdded", "agent1001"), NOW)
    b.handle({"Event": "AgentConnect", "Queue": "q-general", "Interface": "PJSIP/agent1001"}, NOW)
    b.reconcile([member("QueueMember", "agent1001", Status="2")], NOW)
    assert b.seats["agent1001"].queues["general"].in_call
    b.reconcile([member("QueueMember", "agent1001", Status="1", LastCall=str(int(NOW) + 1))], NOW)
    assert not b.seats["agent1001"].queues["general"].in_call
