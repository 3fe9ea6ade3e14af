"""`ivr check`, `ivr schema` and `ivr simulate` through ivr.cli.main."""

from __future__ import annotations

import io
import json

import pytest

from flow_helpers import PROMPTS, make_catalog
from ivr import cli
from ivr.prompts import catalog as prompts_module


@pytest.fixture
def fixture_catalog(monkeypatch):
    monkeypatch.setattr(prompts_module, "load_catalog", lambda _dir: make_catalog(), raising=False)


def test_check_prints_each_flows_worst_path_and_exits_0(config_dir, fixture_catalog, capsys):
    assert cli.main(["--config", str(config_dir), "check"]) == 0
    out = capsys.readouterr().out
    assert "main: worst case 9.3s from answer to a human (budget 15s)" in out
    assert "caller[else] 0.3s → greeting[next] 4s → menu[key 1] 5s → consult[next] 0s → general[queue] 0s" in out
    assert "ok: 5 flows, version " in out


def test_check_exits_1_with_located_errors(config_dir, fixture_catalog, capsys):
    (config_dir / "flows" / "main.yaml").write_text("nodes:\n  a: {type: queue, queue: nope}\n")
    assert cli.main(["--config", str(config_dir), "check"]) == 1
    out = capsys.readouterr().out
    assert f"{config_dir}/flows/main.yaml:2:27: queue 'nope' is not defined in config/queues.yaml" in out
    assert "config refused" in out


def test_check_fails_when_over_budget(config_dir, monkeypatch, capsys):
    slow = make_catalog({**PROMPTS, "main_menu": ("很长的菜单", 12.0)})
    monkeypatch.setattr(prompts_module, "load_catalog", lambda _dir: slow, raising=False)
    assert cli.main(["--config", str(config_dir), "check"]) == 1
    line = (config_dir / "flows" / "main.yaml").read_text().splitlines().index("budget: 15s") + 1
    assert f"main.yaml:{line}:9: flow 'main': worst case 17.3s to a human exceeds budget 15s" in capsys.readouterr().out


def test_schema_is_json_with_every_node_type(capsys):
    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"Play", "Menu", "Collect", "Say", "SetVars", "Branch", "Queue", "Transfer", "Goto", "Subflow", "Hangup",
            "TicketQuery"} <= set(schema["$defs"])
    assert schema["$defs"]["Menu"]["additionalProperties"] is False


def test_simulate_with_keys_prints_prompts_waits_and_route(config_dir, fixture_catalog, capsys):
    assert cli.main(["--config", str(config_dir), "simulate", "12345", "--keys", "1"]) == 0
    out = capsys.readouterr().out
    assert "   0.0s  play welcome_12345 「您好，欢迎致电12345政务服务便民热线。」 4s" in out
    assert "   4.0s  play main_menu 「人社业务请按1，人工服务请按0或直接等待。」 4s" in out
    assert "   8.0s  wait up to 1s for 1 digit" in out
    assert "caller presses 1" in out
    assert "route: queue general (priority 0) after 9s; keys 1" in out


def test_simulate_sample_two_levels_to_the_tax_subcenter(config_dir, fixture_catalog, capsys):
    assert cli.main(["--config", str(config_dir), "simulate", "8000", "--keys", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "play transfer_notice" in out
    assert "route: transfer to 12366 via trunk tax (ring 20s, then queue general)" in out


def test_simulate_collect_branch_at_a_given_time(config_dir, fixture_catalog, capsys):
    args = ["--config", str(config_dir), "simulate", "8000", "--keys", "1,1,110101199001011234", "--at", "2026-10-01T10:00"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "say digits 110101199001011234" in out
    assert "sample/by_time → sample/agent" in out  # National Day: not a working day


def test_simulate_interactive_reads_stdin_and_eof_hangs_up(config_dir, fixture_catalog, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert cli.main(["--config", str(config_dir), "simulate", "8000", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "no input (timeout)" in out
    assert "caller hangs up" in out and "caller hung up after" in out


def test_simulate_rejects_a_bad_time(config_dir, fixture_catalog, capsys):
    assert cli.main(["--config", str(config_dir), "simulate", "8000", "--at", "tomorrow"]) == 2
    assert "--at 'tomorrow'" in capsys.readouterr().err


def test_check_names_a_web_phones_turn_secret_that_cannot_be_read(config_dir, fixture_catalog, capsys, tmp_path):
    """Issue 23: the TURN secret is refused by `ivr check`, not first when an agent signs in."""
    queues = config_dir / "queues.yaml"
    secret = tmp_path / "turn.secret"
    queues.write_text(queues.read_text().replace(
        "phones:\n", f"phones:\n  web: {{ice_servers: ['turn:turn.example'], turn_secret: {{file: {secret}}}}}\n", 1))
    assert cli.main(["--config", str(config_dir), "check"]) == 1
    assert f"{secret} is unreadable (phones.web.turn_secret)" in capsys.readouterr().out
    secret.write_text("Zq8vR2pLx7TnW4yK9sHf3c\n")
    assert cli.main(["--config", str(config_dir), "check"]) == 0, capsys.readouterr().out
