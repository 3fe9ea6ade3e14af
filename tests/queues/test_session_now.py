"""Which leader session the wallboard shows (领导接听, queues/sessions.py ``on_or_next``): the one on
now, else the next one today, at the windows' edges and across midnight; and its window as staff
read it (ivr/core/labels.py ``session_window``). Local times: the host's zone, as on the bed."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ivr.core.labels import session_window
from queues.sessions import LeaderSession, on_or_next


def session(day: date, window: str) -> LeaderSession:
    return LeaderSession(topic="汛后恢复重建", day=day, time=window, prompt="p", seats=("leader3001",))


SESSIONS = {
    "morning": session(date(2026, 12, 1), "09:00-10:00"),
    "afternoon": session(date(2026, 12, 1), "14:00-15:00"),
    "late": session(date(2026, 12, 1), "23:30-00:30"),  # runs past midnight into 12-02
    "tomorrow": session(date(2026, 12, 2), "09:00-10:00"),
}


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second).astimezone()


@pytest.mark.parametrize(("now", "shown"), [
    (at(1, 8, 59, 59), ("morning", False)),  # before the first one: the next today
    (at(1, 9, 0), ("morning", True)),  # the start is in the window
    (at(1, 9, 59, 59), ("morning", True)),
    (at(1, 10, 0), ("afternoon", False)),  # the end is not: the next one today instead
    (at(1, 15, 0), ("late", False)),
    (at(1, 23, 30), ("late", True)),
    (at(2, 0, 0), ("late", True)),  # past midnight it is still on, though it started yesterday
    (at(2, 0, 29, 59), ("late", True)),
    (at(2, 0, 30), ("tomorrow", False)),  # ended: the next one of the new day
    (at(2, 10, 0), None),  # none left today (tomorrow's do not count)
    (at(1, 23, 29, 59), ("late", False)),
])
def test_the_session_on_now_else_the_next_one_today(now: datetime, shown: tuple[str, bool] | None) -> None:
    assert on_or_next(SESSIONS, now) == shown


def test_nothing_without_sessions_and_a_session_on_any_line_counts() -> None:
    assert on_or_next({}, at(1, 9, 30)) is None
    only_12319 = session(date(2026, 12, 1), "09:00-10:00").model_copy(update={"lines": ("12319",)})
    assert on_or_next({"roads": only_12319}, at(1, 9, 30)) == ("roads", True)


def test_a_window_names_a_day_other_than_today() -> None:
    def shown(sid: str, today: date) -> str:
        window = SESSIONS[sid].window()
        return session_window(window.start, window.end, today)
    assert shown("morning", date(2026, 12, 1)) == "09:00–10:00"
    assert shown("late", date(2026, 12, 1)) == "23:30–次日00:30"
    assert shown("late", date(2026, 12, 2)) == "昨日23:30–00:30"
    assert shown("tomorrow", date(2026, 12, 1)) == "次日09:00–次日10:00"
    to_midnight = session(date(2026, 12, 1), "22:00-24:00").window()
    assert session_window(to_midnight.start, to_midnight.end, date(2026, 12, 1)) == "22:00–24:00"
