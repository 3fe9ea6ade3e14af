"""Which targets a call may be handed to, and which channel the engine moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from transfer.control import Leg, TransferError, find_call, plan_move, resolve, targets

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load_config(REPO / "config", environ={}).settings
AGENTS = list(SETTINGS.agents)
CALLER = Leg("PJSIP/pstn-00000000", "c.0", "c.0", "pstn", True)
SEAT = Leg("PJSIP/agent1001-00000001", "c.1", "c.0", "agent1001", True)


def test_targets_are_the_plans_subcenters_the_emergency_lines_and_the_platforms() -> None:
    known = targets(SETTINGS)
    assert {k: (t.kind, t.route.trunk) for k, t in known.items() if k in ("12360", "110", "province")} == {
        "12360": ("subcenter", "customs"), "110": ("emergency", "emergency"), "province": ("platform", "province")}
    assert "12345" not in known and "12333" not in known  # the platform's own lines are no target


def test_a_target_by_number_or_by_name_and_an_unknown_one_is_refused_with_the_known_ones() -> None:
    assert resolve(SETTINGS, "customs").extension == "12360" and resolve(SETTINGS, " 110 ").kind == "emergency"
    with pytest.raises(TransferError, match=r"unknown transfer target '99999' \(known: .*12360.*province"):
        resolve(SETTINGS, "99999")


def test_a_call_with_an_agent_is_blind_transferred_from_the_agents_channel() -> None:
    linkedid, legs = find_call([CALLER, SEAT], "agent1001", AGENTS)
    move = plan_move(linkedid, legs, AGENTS)
    assert (linkedid, move.method, move.channel, move.agent) == ("c.0", "blind", SEAT.channel, "agent1001")


def test_a_call_without_an_agent_redirects_the_caller_and_a_bridge_needs_an_agent() -> None:
    queued = Leg("PJSIP/pstn-00000000", "c.0", "c.0", "pstn", False)
    assert plan_move("c.0", [queued], AGENTS).method == "redirect"
    with pytest.raises(TransferError, match="not talking to an agent"):
        plan_move("c.0", [queued], AGENTS, three_party=True)
    bridge = plan_move("c.0", [CALLER, SEAT], AGENTS, three_party=True)
    assert (bridge.method, bridge.channel, bridge.extra) == ("bridge", CALLER.channel, SEAT.channel)


def test_an_attended_transfer_starts_from_the_agents_channel_and_needs_an_agent() -> None:
    move = plan_move("c.0", [CALLER, SEAT], AGENTS, attended=True)
    assert (move.method, move.channel, move.agent) == ("attended", SEAT.channel, "agent1001")
    queued = Leg("PJSIP/pstn-00000000", "c.0", "c.0", "pstn", False)
    with pytest.raises(TransferError, match="attended transfer needs one"):
        plan_move("c.0", [queued], AGENTS, attended=True)
    with pytest.raises(TransferError, match="either attended or three-party"):
        plan_move("c.0", [CALLER, SEAT], AGENTS, attended=True, three_party=True)


def test_no_such_call_and_an_idle_agent_are_said_plainly() -> None:
    with pytest.raises(TransferError, match="no call x.9 is up"):
        find_call([CALLER, SEAT], "x.9", AGENTS)
    with pytest.raises(TransferError, match="agent agent1002 is not talking"):
        find_call([CALLER, SEAT], "agent1002", AGENTS)


def test_a_platform_named_like_a_trunk_is_refused_with_its_place(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(REPO / "config", tmp_path / "config")
    path = tmp_path / "config" / "subcenters.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  province: {", "  customs: {"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"subcenters.yaml:\d+.*'customs' already names a trunk or an agent"):
        load_config(tmp_path / "config", environ={})
