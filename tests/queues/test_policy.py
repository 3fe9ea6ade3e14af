"""Which queue a call may wait in now: expert hours on the Chinese working-day calendar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ivr.config import load_config
from ivr.core.calendar import load_calendar
from queues.model import QueueRoute, memberships, serving
from queues.policy import open_queue

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load_config(REPO / "config", environ={}).settings
CALENDAR = load_calendar()


def route_at(at: datetime) -> tuple[QueueRoute, str]:
    return open_queue(QueueRoute("expert-hrss", 1), SETTINGS.queues, at, CALENDAR)


def test_within_the_experts_hours_on_a_working_day_the_call_waits_for_an_expert() -> None:
    assert route_at(datetime(2026, 12, 1, 10, 0)) == (QueueRoute("expert-hrss", 1), "")


def test_outside_the_hours_on_a_holiday_and_on_a_weekend_it_goes_to_the_general_queue_at_once() -> None:
    closed = (QueueRoute("general", 1), "expert-hrss closed")
    assert route_at(datetime(2026, 12, 1, 18, 0)) == closed  # after 17:30
    assert route_at(datetime(2026, 10, 1, 10, 0)) == closed  # National Day
    assert route_at(datetime(2026, 12, 5, 10, 0)) == closed  # a Saturday


def test_a_make_up_saturday_is_a_working_day_for_the_experts() -> None:
    assert CALENDAR.is_working_day(datetime(2026, 10, 10).date())  # 调休
    assert route_at(datetime(2026, 10, 10, 9, 0)) == (QueueRoute("expert-hrss", 1), "")


def test_the_general_queue_is_always_open() -> None:
    assert open_queue(QueueRoute("general"), SETTINGS.queues, datetime(2026, 10, 1, 3, 0), CALENDAR) == (QueueRoute("general"), "")


def test_agents_serve_the_queues_of_their_skills_with_the_skills_penalties() -> None:
    assert memberships(SETTINGS.agents["expert2001"], SETTINGS.queues) == {"general": 10, "expert-hrss": 0}
    assert memberships(SETTINGS.agents["agent1001"], SETTINGS.queues) == {"general": 0}
    assert serving("expert-legal", SETTINGS.agents, SETTINGS.queues) == ["expert2002"]
    leaders = serving("leader", SETTINGS.agents, SETTINGS.queues)
    assert leaders == ["leader3001", "leader3002"]  # 领导接听: a leader's seat serves only the leader queue
    assert sorted(serving("general", SETTINGS.agents, SETTINGS.queues)) == sorted(set(SETTINGS.agents) - set(leaders))
