"""The wallboard's numbers from what Redis holds (pure): callers waiting and the longest wait per
queue and line, agents by state per queue, pending callbacks, today and the last hour from the
service-level buckets, and a trend chart that is SVG without any script."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from console.views.wallboard import AGENT_LABELS, SEAT_LABELS, agent_columns
from console.wallboard import HELD, Labels, build_snapshot, recording_disk, trend_svg
from ivr.config import load_config
from queues.agents import Membership, Seat
from queues.sessions import LEADER_QUEUE, SESSION_REASON, LeaderSession
from queues.waiting import Waiting

CONFIG = Path(__file__).resolve().parents[2] / "config"
NOW = 1_764_000_000.0


def seat(agent: str, **queues: Membership) -> dict:
    return Seat(agent, dict(queues), NOW - 60).to_json(NOW)


def test_a_snapshot_counts_waiting_callers_agents_and_service_level_per_queue_and_line() -> None:
    settings = load_config(CONFIG).settings
    labels = Labels.at(NOW)
    seats = {
        "agent1001": seat("agent1001", general=Membership(device="2", in_call=True)),  # talking
        "agent1002": seat("agent1002", general=Membership(paused=True, reason="用餐")),
        "agent1003": seat("agent1003", general=Membership(last_call=NOW - 2, wrapup=5)),  # wrap-up
        "expert2001": seat("expert2001", **{"expert-hrss": Membership()}, general=Membership(penalty=10)),
        "expert2002": seat("expert2002"),  # logged out
    }
    waiting = [Waiting("c1", "general", "12345", NOW - 42, "a"), Waiting("c2", "general", "12345", NOW - 7, "a"),
               Waiting("c3", "expert-hrss", "12333", NOW - 3, "a"),
               Waiting("c4", "general", "12345", NOW - 7 * 3600, "gone")]  # left by an Asterisk nobody follows
    callbacks = [{"queue": "general"}, {"queue": "general"}]
    now_bucket, earlier = labels.trend[-1], labels.trend[-13]  # in the last hour, and just before it
    buckets = {
        "queue:general": {labels.day: {"offered": "10", "answered": "8", "answered_15": "6", "abandoned": "2"},
                          now_bucket: {"offered": "3", "answered": "3", "answered_15": "3"},
                          earlier: {"offered": "2", "answered": "1"}},
        "line:12345": {labels.day: {"offered": "9", "answered": "7", "answered_15": "6"}},
    }
    snap = build_snapshot(settings, seats, waiting, callbacks, buckets, labels, NOW)

    general = next(q for q in snap["queues"] if q["name"] == "general")
    assert (general["waiting"], general["longest_wait_s"], general["oldest_joined"]) == (2, 42.0, NOW - 42)
    assert general["agents"] == {"logged_in": 4, "available": 1, "ringing": 0, "talking": 1, "wrapup": 1,
                                 "paused": 1, HELD: 0, "unreachable": 0}
    assert general["callbacks_pending"] == 2
    assert general["today"]["offered"] == 10 and general["today"]["answer_rate_15"] == 0.6
    assert general["last_hour"]["offered"] == 3 and general["last_hour"]["answered_15"] == 3
    hrss = next(q for q in snap["queues"] if q["name"] == "expert-hrss")
    assert (hrss["waiting"], hrss["agents"]["logged_in"], hrss["callbacks_pending"]) == (1, 1, 0)

    lines = {row["name"]: row for row in snap["lines"]}
    assert lines["12345"]["waiting"] == 2 and lines["12345"]["today"]["answered_15"] == 6
    assert lines["12333"]["waiting"] == 1  # a line shows while a caller waits on it
    assert "12366" not in lines  # a line without calls today stays off the board
    assert snap["platform"]["waiting"] == 3 and snap["platform"]["agents_logged_in"] == 4
    assert snap["platform"]["today"]["offered"] == 9  # every call once: by its line


def test_a_trend_chart_is_inline_svg_scaled_to_its_busiest_bucket() -> None:
    svg = trend_svg([0, 4, 2], [0, 2, 2], "综合<座席>")
    assert svg.startswith("<svg") and "<script" not in svg
    assert svg.count('class="offered"') == 2 and svg.count('class="within15"') == 2
    assert "综合&lt;座席&gt;" in svg  # titles are escaped
    assert 'height="34.0"' in svg  # the busiest bucket fills the chart


def test_the_recordings_disk_tile_reads_what_the_worker_wrote_and_tells_a_stale_or_missing_reading() -> None:
    settings = load_config(CONFIG).settings
    labels = Labels.at(NOW)
    worker_wrote = {"total": "1000", "free": "150", "alarm": "1", "at": f"{NOW - 300:.0f}"}
    snap = build_snapshot(settings, {}, [], [], {}, labels, NOW, worker_wrote)
    assert snap["platform"]["recording_disk"] == {"total": 1000, "free": 150, "used_ratio": 0.85, "alarm": True,
                                                  "age_s": 300.0, "problem": ""}
    assert recording_disk({"total": "1000", "free": "900", "alarm": "0", "at": str(NOW)}, NOW)["alarm"] is False
    no_inodes = recording_disk({**worker_wrote, "problem": "no-inodes"}, NOW)  # a full inode table is an alarm too
    assert no_inodes and no_inodes["problem"] == "no-inodes" and no_inodes["alarm"] is True
    assert build_snapshot(settings, {}, [], [], {}, labels, NOW)["platform"]["recording_disk"] is None  # never measured
    assert recording_disk({"total": "x", "free": "1"}, NOW) is None


def test_the_trunk_rows_show_each_nodes_qualified_trunks_with_their_titles_and_leave_out_the_rest() -> None:
    settings = load_config(CONFIG).settings

    def row(trunk: str, node: str, up: bool) -> str:
        return json.dumps({"trunk": trunk, "asterisk": node, "up": up, "at": NOW - 4})
    stored = {"a|tax": row("tax", "a", False), "b|tax": row("tax", "b", True), "a|emergency": row("emergency", "a", True),
              "a|gone": row("gone", "a", False)}  # a trunk no longer configured
    snap = build_snapshot(settings, {}, [], [], {}, Labels.at(NOW), NOW, trunks=stored)
    assert snap["trunks"] == [
        {"trunk": "emergency", "title": "应急联动线路", "node": "a", "up": True, "age_s": 4.0},
        {"trunk": "tax", "title": "12366纳税服务热线", "node": "a", "up": False, "age_s": 4.0},
        {"trunk": "tax", "title": "12366纳税服务热线", "node": "b", "up": True, "age_s": 4.0},
    ]
    assert build_snapshot(settings, {}, [], [], {}, Labels.at(NOW), NOW)["trunks"] == []  # nobody wrote one yet


def test_each_agent_asked_today_or_logged_in_has_a_row_with_todays_survey_and_no_other_day_counts() -> None:
    settings = load_config(CONFIG).settings
    labels = Labels.at(NOW)
    yesterday = Labels.at(NOW - 86_400).day
    seats = {"agent1002": seat("agent1002", general=Membership()),  # logged in, nobody asked yet
             "agent1003": seat("agent1003")}  # logged out, not asked today: no row
    buckets = {
        # asked 4 times, 5 + 4 + 1 keyed, one hung up: 3 of 4 rated, average 3.33, 2 of 3 satisfied, 1 low
        "agent:agent1001": {labels.day: {"survey_offered": "4", "rated": "3", "rating_sum": "10", "satisfied": "2",
                                         "low_rated": "1"}},
        "agent:gone3001": {labels.day: {"survey_offered": "1"}},  # a seat no longer configured, asked today
        "agent:agent1003": {yesterday: {"survey_offered": "9", "rated": "9"}},  # yesterday's: not today
        "queue:general": {labels.day: {"survey_offered": "5"}},
    }
    rows = build_snapshot(settings, seats, [], [], buckets, labels, NOW)["agent_satisfaction"]
    assert [(r["agent"], r["name"]) for r in rows] == [("agent1001", "综合座席1001"), ("agent1002", "综合座席1002"),
                                                       ("gone3001", "")]
    first = rows[0]["satisfaction_today"]
    assert (first["survey_offered"], first["rated"], first["low_rated"]) == (4, 3, 1)
    assert (first["rated_share"], first["average"], first["satisfied_share"]) == (0.75, 3.33, 0.6667)
    idle = rows[1]["satisfaction_today"]
    assert (idle["survey_offered"], idle["rated_share"], idle["average"], idle["satisfied_share"]) == (0, None, None, None)
    assert rows[2]["satisfaction_today"]["rated_share"] == 0.0


def test_the_leader_session_on_now_shows_with_the_leader_queues_callers_and_seats_and_none_shows_without() -> None:
    settings = load_config(CONFIG).settings
    assert build_snapshot(settings, {}, [], [], {}, Labels.at(NOW), NOW)["leader_session"] is None  # none configured
    start = datetime.fromtimestamp(NOW).astimezone() - timedelta(minutes=10)
    on = LeaderSession(topic="汛后恢复重建", day=start.date(), time=f"{start:%H:%M}-{start + timedelta(minutes=40):%H:%M}",
                       prompt="p", seats=("leader3001",))
    settings = settings.model_copy(update={"sessions": {"flood": on}})
    seats = {"leader3001": seat("leader3001", leader=Membership(device="2", in_call=True)),
             "agent1001": seat("agent1001", general=Membership())}
    waiting = [Waiting("c1", "leader", "12345", NOW - 20, "a"), Waiting("c2", "general", "12345", NOW - 5, "a")]
    shown = build_snapshot(settings, seats, waiting, [], {}, Labels.at(NOW), NOW)["leader_session"]
    assert (shown["id"], shown["topic"], shown["on"], shown["waiting"], shown["longest_wait_s"]) == (
        "flood", "汛后恢复重建", True, 1, 20.0)
    assert (shown["agents"]["logged_in"], shown["agents"]["talking"], shown["agents"]["available"]) == (1, 1, 0)
    assert shown["start"] == start.isoformat() and f"{start:%H:%M}–" in shown["window"]
    later = build_snapshot(settings, seats, waiting, [], {}, Labels.at(NOW + 3600), NOW + 3600)["leader_session"]
    assert later is None  # it ended, and no other one today


def test_held_leader_seats_are_set_apart_from_the_sessions_own_on_the_line_in_the_queue_row_and_in_the_seat_list() -> None:
    settings = load_config(CONFIG).settings
    start = datetime.fromtimestamp(NOW).astimezone() - timedelta(minutes=10)
    on = LeaderSession(topic="汛后恢复重建", day=start.date(), time=f"{start:%H:%M}-{start + timedelta(minutes=40):%H:%M}",
                       prompt="p", seats=("leader3001", "leader3003", "leader3004"))
    settings = settings.model_copy(update={"sessions": {"flood": on}})
    seats = {
        "leader3001": seat("leader3001", leader=Membership()),  # the session's, ready
        "leader3002": seat("leader3002", leader=Membership(paused=True, reason=SESSION_REASON)),  # held
        "leader3003": seat("leader3003", leader=Membership(paused=True, reason="小休")),  # the session's, on a break
        "leader3004": seat("leader3004", leader=Membership(paused=True)),  # paused without a reason (*74)
        # held in the leader queue, ready in the general one: it takes general calls, the leader's never
        "leader3005": seat("leader3005", leader=Membership(paused=True, reason=SESSION_REASON), general=Membership()),
        # the session ended mid-call: held by now, but still talking to the session's caller
        "leader3006": seat("leader3006", leader=Membership(paused=True, reason=SESSION_REASON, device="2", in_call=True)),
    }
    snap = build_snapshot(settings, seats, [], [], {}, Labels.at(NOW), NOW)

    shown = snap["leader_session"]
    assert shown["agents"] == {"logged_in": 4, "available": 1, "ringing": 0, "talking": 1, "wrapup": 0, "paused": 2,
                               "unreachable": 0}
    assert (shown["held"], shown["pauses"]) == (2, {"": 1, "小休": 1})
    leader = next(q for q in snap["queues"] if q["name"] == "leader")
    assert leader["agents"] == {"logged_in": 6, "available": 1, "ringing": 0, "talking": 1, "wrapup": 0, "paused": 2,
                                HELD: 2, "unreachable": 0}
    general = next(q for q in snap["queues"] if q["name"] == "general")
    assert (general["agents"]["available"], general["agents"][HELD]) == (1, 0)
    states = {s["agent"]: s["state"] for s in snap["seats"]}
    assert states == {"leader3001": "available", "leader3002": HELD, "leader3003": "paused", "leader3004": "paused",
                      "leader3005": "available", "leader3006": "talking"}

    # before today's next session every leader seat is held: the line says so instead of 签入 without 空闲
    ahead = NOW - 900  # 5 minutes before it starts
    before = build_snapshot(settings, {"leader3002": seats["leader3002"]}, [], [], {}, Labels.at(ahead), ahead)["leader_session"]
    assert (before["on"], before["agents"]["logged_in"], before["held"], before["pauses"]) == (False, 0, 1, {})


def test_the_board_names_a_held_seat_non_session_in_mandarin_and_adds_the_column_only_with_a_leader_queue() -> None:
    settings = load_config(CONFIG).settings
    assert SEAT_LABELS[HELD] == SESSION_REASON == "非本场次" and AGENT_LABELS[HELD] == SESSION_REASON
    columns = agent_columns(settings)
    assert columns[columns.index("paused") + 1] == HELD
    without = settings.model_copy(update={"queues": {n: q for n, q in settings.queues.items() if n != LEADER_QUEUE},
                                          "sessions": {}})
    assert HELD not in agent_columns(without)
