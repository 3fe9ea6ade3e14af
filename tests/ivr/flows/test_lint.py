"""The compliance lint's worst-path arithmetic, with the fixture catalog's durations."""

from __future__ import annotations

import pytest

from flow_helpers import PROMPTS, make_catalog
from flow_helpers import NOTICE_FLOW, write_flow, compile_text, errors_of


def test_worst_path_adds_prompts_timeouts_retries_and_notices(bare_config, catalog):
    flows = compile_text(bare_config, catalog, """
        budget: 60s
        nodes:
          hello: {type: play, prompts: [welcome_12345, transfer_notice], next: menu}
          menu:
            type: menu
            prompt: main_menu
            keys: {"0": agent, "1": ask}
            timeout: 3s
            retries: 2
            on_exhausted: agent
          ask:
            type: collect
            prompt: enter_id_number
            var: id
            max_digits: 4
            timeout: 2s
            retries: 0
            next: read
            on_exhausted: agent
          read: {type: say, value: "${id}", next: agent}
          agent: {type: queue, queue: general, prompt: queue_notice}
        """)
    report = flows.lint["t"]
    # hello: 4 + 2; menu: 3 × (4 + 3) + 2 × max(1.5, 1.5); collect: 3.5 + 2 × 4;
    # say: 4 digits × 0.8; queue notice 2.5
    assert report.worst_seconds == pytest.approx(6 + 24 + 11.5 + 3.2 + 2.5)
    assert [(s.node, s.label, s.seconds) for s in report.worst_path] == [
        ("hello", "next", 6.0),
        ("menu", "key 1", 24.0),
        ("ask", "valid input", 11.5),
        ("read", "next", pytest.approx(3.2)),
        ("agent", "queue", 2.5),
    ]
    assert not report.over_budget


def test_back_and_forth_is_bounded_by_max_visits(bare_config, catalog):
    flows = compile_text(bare_config, catalog, """
        nodes:
          top: {type: menu, prompt: main_menu, keys: {"1": sub, "0": agent}, timeout: 1s, retries: 0, max_visits: 2, on_exhausted: agent}
          sub: {type: menu, prompt: hrss_menu, keys: {"0": agent}, back: top, timeout: 1s, retries: 0, max_visits: 3, on_exhausted: agent}
          agent: {type: queue, queue: general}
        """)
    # top 5s and sub 4s per visit; top answers twice (a third entry would leave at once, 0s)
    report = flows.lint["t"]
    assert [(s.node, s.seconds) for s in report.worst_path] == [("top", 5), ("sub", 4), ("top", 5), ("sub", 4), ("agent", 0)]
    assert report.worst_seconds == pytest.approx(18.0)


def test_hangup_paths_do_not_count_and_subflows_add_up(bare_config, catalog):
    write_flow(bare_config, NOTICE_FLOW, name="notice")
    flows = compile_text(bare_config, catalog, """
        nodes:
          menu: {type: menu, prompt: main_menu, keys: {"0": go, "8": bye}, timeout: 2s, retries: 0, on_exhausted: go}
          bye: {type: hangup, prompt: emergency_notice}
          go: {type: subflow, flow: notice}
        """)
    # transitional_notice has no duration: 21 characters / 4 per second = 5.25 s, estimated
    assert flows.estimated == {"transitional_notice": 5.25}
    assert flows.lint["t"].worst_seconds == pytest.approx(6 + 5.25)
    assert [s.node for s in flows.lint["t"].worst_path] == ["menu", "go", "notice", "agent"]


def test_over_budget_is_reported_at_the_budget_with_the_worst_path(bare_config):
    slow = make_catalog({**PROMPTS, "main_menu": ("很长的菜单", 12.0)})
    assert errors_of(bare_config, slow, """
        budget: 15s
        nodes:
          hello: {type: play, prompts: welcome_12345, next: menu}
          menu: {type: menu, prompt: main_menu, keys: {"0": agent}, timeout: 3s, retries: 0, on_exhausted: agent}
          agent: {type: queue, queue: general}
        """) == [
        "1:9: flow 't': worst case 19s to a human exceeds budget 15s: hello[next] 4s → menu[key 0] 15s → agent[queue] 0s"
    ]


def test_shipped_flows_meet_their_budget_with_short_prompts(config_dir, catalog):
    from ivr.hot_reload import compile_config

    flows = compile_config(config_dir, catalog, environ={}, strict_lint=True)
    assert flows.lint["main"].worst_seconds == pytest.approx(0.3 + 4 + 4 + 1)  # the open-ticket look-up, greeting, menu
    assert flows.lint["hrss"].worst_seconds == pytest.approx(3 + 3 + 3)
    assert flows.lint["main"].budget == 15
