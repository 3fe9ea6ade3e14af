"""Leader reception sessions (领导接听, issue 22 item 10) over the shipped main.yaml and the fake
channel: the session's announcement replaces the greeting and 6 joins the leader queue with the
call marked, only while it is on; config/sessions.yaml refused with file:line; the lint counts the
longest announcement."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from flow_helpers import PROMPTS, FakeChannel, call, make_catalog
from ivr.config import ConfigError
from ivr.core.route import QueueRoute
from ivr.core.yamlsource import SourceErrors
from ivr.flows.runner import run_call
from ivr.hot_reload import compile_config

MONDAY_9_30 = datetime(2026, 11, 23, 9, 30).astimezone()
CATALOG = make_catalog({**PROMPTS, "session_flood": ("市领导正在接听汛后重建来电，请按6。", 3.5),
                        "session_long": ("市领导正在接听汛后重建来电，" * 4 + "请按6。", 14.0)})


def sessions_yaml(config: Path, text: str) -> None:
    (config / "sessions.yaml").write_text("sessions:\n" + text, encoding="utf-8")


FLOOD = """  flood:
    topic: 汛后恢复重建
    day: 2026-11-23
    time: "09:00-10:00"
    prompt: session_flood
    seats: [leader3001]
"""


async def main_call(config: Path, keys: list[str], at: datetime = MONDAY_9_30, dialed: str = "12345"):  # type: ignore[no-untyped-def]
    flows = compile_config(config, CATALOG, environ={}, strict_lint=True)
    channel = FakeChannel(keys)
    record = await run_call(flows, call(dialed), channel, now=lambda: at)
    return record, channel.sounds()


async def test_given_a_session_on_then_its_prompt_replaces_the_greeting_and_6_joins_the_leader_queue_marked(config_dir):
    sessions_yaml(config_dir, FLOOD)
    record, sounds = await main_call(config_dir, ["6"])
    assert sounds[:2] == ["session_flood", "main_menu"] and "welcome_12345" not in sounds
    assert isinstance(record.route, QueueRoute) and record.route.queue == "leader"
    assert record.leader_session == "flood" and "leader_session" not in record.variables


@pytest.mark.parametrize("at", [MONDAY_9_30 - timedelta(minutes=31), MONDAY_9_30 + timedelta(minutes=30),
                                MONDAY_9_30 + timedelta(days=1)])
async def test_given_no_session_on_then_nothing_is_said_and_6_is_an_ordinary_wrong_key(config_dir, at):
    sessions_yaml(config_dir, FLOOD)
    record, sounds = await main_call(config_dir, ["6"], at=at)
    assert sounds[:2] == ["welcome_12345", "main_menu"] and "session_flood" not in sounds
    assert record.route == QueueRoute("general") and record.leader_session == ""


async def test_given_a_session_on_other_lines_only_then_12345_callers_do_not_hear_it(config_dir):
    sessions_yaml(config_dir, FLOOD + '    lines: ["12319"]\n')
    record, sounds = await main_call(config_dir, ["6"])
    assert "session_flood" not in sounds and record.route == QueueRoute("general")


async def test_given_a_session_across_midnight_then_it_is_on_after_midnight_and_off_after_its_end(config_dir):
    sessions_yaml(config_dir, FLOOD.replace('"09:00-10:00"', '"23:30-00:30"'))
    after_midnight = datetime(2026, 11, 24, 0, 10).astimezone()
    record, _ = await main_call(config_dir, ["6"], at=after_midnight)
    assert record.leader_session == "flood"
    record, _ = await main_call(config_dir, ["6"], at=after_midnight + timedelta(minutes=25))
    assert record.leader_session == ""


def test_the_lint_counts_the_longest_announcement_and_refuses_an_over_long_one(config_dir):
    sessions_yaml(config_dir, FLOOD)
    flows = compile_config(config_dir, CATALOG, environ={}, strict_lint=True)
    assert flows.lint["main"].worst_seconds is not None and flows.lint["main"].worst_seconds <= 15
    sessions_yaml(config_dir, FLOOD.replace("session_flood", "session_long"))
    with pytest.raises(SourceErrors) as exc:
        compile_config(config_dir, CATALOG, environ={}, strict_lint=True)
    assert "session[next] 14s" in str(exc.value) and "exceeds budget 15s" in str(exc.value)


@pytest.mark.parametrize("change, where, reason", [
    (('day: 2026-11-23', 'day: 2026-11-31'), 4, "valid date"),
    (('"09:00-10:00"', '"9:00-25:00"'), 5, "is not a time range"),
    (('"09:00-10:00"', '"09:00-09:00"'), 5, "empty window"),
    (("seats: [leader3001]", "seats: [agent1001]"), 7, "'agent1001' is not a leader seat"),
    (("seats: [leader3001]", "seats: [nobody]"), 7, "'nobody' is not a leader seat"),
])
def test_a_bad_session_is_refused_with_file_line_and_reason(config_dir, change, where, reason):
    sessions_yaml(config_dir, FLOOD.replace(*change))
    with pytest.raises(ConfigError) as exc:
        compile_config(config_dir, CATALOG, environ={})
    assert f"sessions.yaml:{where}:" in str(exc.value) and reason in str(exc.value), str(exc.value)


def test_overlapping_sessions_are_refused_at_the_later_ones_time(config_dir):
    sessions_yaml(config_dir, FLOOD + FLOOD.replace("flood:", "roads:").replace('"09:00-10:00"', '"09:45-11:00"'))
    with pytest.raises(ConfigError) as exc:
        compile_config(config_dir, CATALOG, environ={})
    assert "sessions.yaml:11:" in str(exc.value) and "'roads' overlaps session 'flood'" in str(exc.value)
    sessions_yaml(config_dir, FLOOD + FLOOD.replace("flood:", "roads:").replace('"09:00-10:00"', '"10:00-11:00"'))
    assert set(compile_config(config_dir, CATALOG, environ={}).settings.sessions) == {"flood", "roads"}  # back to back


def test_a_session_whose_prompt_is_not_in_the_catalog_is_refused(config_dir):
    sessions_yaml(config_dir, FLOOD.replace("session_flood", "session_flod"))
    with pytest.raises(SourceErrors) as exc:
        compile_config(config_dir, CATALOG, environ={})
    assert "sessions.yaml:6:" in str(exc.value) and "prompt 'session_flod' is not in the prompt catalog" in str(exc.value)


def test_the_shipped_example_announcement_fits_the_12345_budget(config_dir):
    """The example of config/sessions.yaml, switched on, with the real catalog's durations."""
    from ivr.hot_reload import catalog_loader

    sessions_yaml(config_dir, FLOOD.replace("session_flood", "session_flood_recovery").replace(
        "2026-11-23", date.today().isoformat()))
    flows = compile_config(config_dir, catalog_loader(Path(__file__).resolve().parents[3] / "prompts")(),
                           environ={}, strict_lint=True)
    assert flows.number_seconds["12345"] <= 15


async def test_a_reload_picks_up_a_new_session_and_refuses_an_over_long_one(config_dir):
    from ivr.hot_reload import LiveFlows

    live = LiveFlows(lambda: compile_config(config_dir, CATALOG, environ={}))
    assert not live.current.settings.sessions
    sessions_yaml(config_dir, FLOOD)
    assert live.reload().ok and set(live.current.settings.sessions) == {"flood"}
    sessions_yaml(config_dir, FLOOD.replace("session_flood", "session_long"))
    result = live.reload()
    assert not result.ok and "exceeds budget 15s" in "\n".join(result.errors)
    assert live.current.settings.sessions["flood"].prompt == "session_flood"  # the last good set stays
