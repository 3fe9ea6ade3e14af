"""The rules for calls lost with their Asterisk node (tracking/node_gone.py, queues/callback.py):
which tickets are the node's, where each caller was, the close and its service-level counts, who
gets a callback."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from queues import kpi
from queues.callback import NodeLossCallbacks, node_loss_request
from tickets.model import Disposition, Ticket
from tracking import node_gone
from tracking.node_gone import Seen

NOW = datetime(2026, 12, 6, 10, 0, 0).astimezone()


def opened(linkedid: str = "ast-a-1796000000.7") -> Ticket:
    """A ticket as Redis holds it while its call is up: only its ``opened`` phase."""
    return Ticket(linkedid=linkedid, line="12345", caller="13900000001",
                  received=(NOW - timedelta(seconds=40)).isoformat(timespec="milliseconds"))


def test_a_call_belongs_to_the_node_its_linkedid_names_and_every_call_to_the_one_node_without_a_cluster() -> None:
    assert node_gone.of_node("ast-a-1796000000.7", "ast-a")
    assert not node_gone.of_node("ast-ab-1796000000.7", "ast-a")  # a node whose name starts alike
    assert not node_gone.of_node("ast-b-1796000000.7", "ast-a")
    assert node_gone.of_node("1796000000.7", "") and node_gone.of_node("pytest-1-1796000000.7", "")


def test_a_caller_is_waiting_in_a_queue_talking_at_a_seat_or_else_in_the_menus() -> None:
    assert node_gone.place(None) == "ivr"
    assert node_gone.place(Seen()) == "ivr"
    assert node_gone.place(Seen(queue="general", joined=1.0)) == "waiting"
    assert node_gone.place(Seen(agent="agent1001")) == "talking"


def test_a_caller_in_the_menus_is_closed_as_lost_to_the_node_without_a_queue_count() -> None:
    t = opened()
    changes = node_gone.close(t, None, "ast-a", NOW)
    assert [c.phase for c in changes] == ["closed"]
    assert t.disposition == Disposition.NODE_LOST.value == "node_lost" and t.closed_by == "node"
    assert t.hangup_by == "system" and t.hangup_cause == "lost with its Asterisk node ast-a"
    assert t.ended and not t.queue_visits and t.timeline[-1].event == "lost with its node"
    assert "in the menus" in t.timeline[-1].detail


def test_a_waiting_caller_ends_the_queue_stay_as_node_lost_counted_once_on_its_queue_and_line() -> None:
    t = opened()
    joined = (NOW - timedelta(seconds=25)).timestamp()
    changes = node_gone.close(t, Seen(queue="general", joined=joined), "ast-a", NOW)
    assert [c.phase for c in changes] == ["queue:general:1", "closed"]  # the phase a follower would give it
    visit = changes[0].visit
    assert visit is not None and visit.outcome == "node_lost" and visit.wait_seconds == pytest.approx(25, abs=0.01)
    assert t.queue == "general" and t.queued and t.wait_seconds == pytest.approx(25, abs=0.01)
    increments = kpi.visit_increments(t, visit, final=changes[0].final, keep_days=30)
    assert {(i.scope, i.name) for i in increments} == {("queue", "general"), ("line", "12345")}
    for inc in increments:
        assert inc.counters["offered"] == 1 and inc.counters["node_lost"] == 1 and "answered" not in inc.counters


def test_a_talking_caller_keeps_the_seat_and_adds_no_second_count_of_its_answered_stay() -> None:
    t = opened()
    changes = node_gone.close(t, Seen(agent="agent1001"), "ast-a", NOW)
    assert [c.phase for c in changes] == ["closed"] and t.agent == "agent1001"
    assert t.disposition == "node_lost"


def test_a_ticket_already_closed_is_not_closed_again() -> None:
    t = opened()
    t.disposition = "answered"
    assert node_gone.close(t, None, "ast-a", NOW) == [] and t.disposition == "answered"


def test_the_node_loss_policy_names_who_is_called_back_and_the_request_keeps_the_callers_place() -> None:
    rules = NodeLossCallbacks()
    assert rules.wants("ivr") and rules.wants("waiting") and not rules.wants("talking") and not rules.wants("other")
    assert NodeLossCallbacks(talking=True, ivr=False).wants("talking") and not NodeLossCallbacks(ivr=False).wants("ivr")
    request = node_loss_request(NodeLossCallbacks(delay=45, attempts=2), "ast-a-1796000000.7", "13900000001",
                                1796000000.25, 5, now=1796000100.0)
    assert request.status == "pending" and request.next_at == 1796000145.0 and request.queue == "general"
    assert request.queued_at == "1796000000.250000" and request.priority == 5 and request.max_attempts == 2
    with pytest.raises(ValidationError):
        NodeLossCallbacks(queue="general,x")  # a name, never text that could reach an Originate


def test_a_node_loss_callback_gives_up_after_its_own_attempts_not_the_queues() -> None:
    from queues import callback as policy
    from queues.model import Callback

    request = node_loss_request(NodeLossCallbacks(attempts=1), "ast-a-1796000000.7", "13900000001", 1.0, 0, now=2.0)
    policy.result(request, "NOANSWER", "agent1001", 3.0, Callback(attempts=3))
    assert request.status == "failed"
    default = node_loss_request(NodeLossCallbacks(), "ast-a-1796000000.8", "13900000001", 1.0, 0, now=2.0)
    policy.result(default, "NOANSWER", "agent1001", 3.0, Callback(attempts=3))
    assert default.status == "pending"  # the queue's three attempts
