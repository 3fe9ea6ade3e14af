"""Layered config: defaults → config/*.yaml → environment, with located errors."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    return d


def test_shipped_config_loads() -> None:
    s = load_config(REPO / "config", environ={}).settings
    assert "general" in s.queues
    assert s.numbers["12345"].mode == "main"
    assert s.ami.host == "127.0.0.1" and s.agi.host == "127.0.0.1"


def test_environment_overrides_files_and_is_named_as_origin(cfg: Path) -> None:
    loaded = load_config(cfg, environ={"IVR_AGI_PORT": "4999", "IVR_AMI_SECRET": "s3"})
    assert loaded.settings.agi.port == 4999
    assert loaded.settings.ami.secret and loaded.settings.ami.secret.get_secret_value() == "s3"
    assert loaded.origin("agi.port") == "environment IVR_AGI_PORT"
    assert loaded.origin("ami.port").startswith(str(cfg / "engine.yaml") + ":")


def test_unknown_key_is_reported_with_file_line_and_column(cfg: Path) -> None:
    (cfg / "engine.yaml").write_text("agi:\n  host: 127.0.0.1\n  prot: 4573\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, environ={})
    assert str(err.value) == f"{cfg / 'engine.yaml'}:3:3: unknown key 'prot'"


def test_unknown_top_level_key(cfg: Path) -> None:
    (cfg / "extra.yaml").write_text("# x\nqueus: {}\n")
    with pytest.raises(ConfigError, match=r"extra.yaml:2:1: unknown key 'queus'"):
        load_config(cfg, environ={})


def test_bad_value_type(cfg: Path) -> None:
    (cfg / "engine.yaml").write_text("agi:\n  port: lots\n")
    with pytest.raises(ConfigError, match=r"engine.yaml:2:9: agi.port: Input should be a valid integer"):
        load_config(cfg, environ={})


def test_duplicate_key(cfg: Path) -> None:
    (cfg / "engine.yaml").write_text("agi:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError, match=r"engine.yaml:3:3: duplicate key 'port' \(first defined at line 2\)"):
        load_config(cfg, environ={})


def test_an_agent_skill_no_queue_serves_is_refused_with_its_line(cfg: Path) -> None:
    text = (cfg / "queues.yaml").read_text().replace("agent1002: {name: 综合座席1002, skills: {general: 0}}",
                                                      "agent1002: {name: 综合座席1002, skills: {general: 0, taxes: 3}}")
    (cfg / "queues.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"queues.yaml:9:\d+: skill 'taxes' is served by no queue"):
        load_config(cfg, environ={})


def test_a_penalty_out_of_range_and_hours_on_the_general_queue_are_refused(cfg: Path) -> None:
    text = (cfg / "queues.yaml").read_text().replace("skills: {hrss: 0, general: 10}", "skills: {hrss: 0, general: 101}")
    (cfg / "queues.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"queues.yaml:\d+:\d+: .*penalty 101 must be 0-100"):
        load_config(cfg, environ={})
    text = text.replace("general: 101", "general: 10").replace("    wrapup: 5\n", "    wrapup: 5\n    hours: {time: 08:00-20:00}\n", 1)
    (cfg / "queues.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"queues.yaml:\d+:\d+: the general queue is 7×24: it has no hours"):
        load_config(cfg, environ={})


def test_unknown_environment_setting() -> None:
    with pytest.raises(ConfigError, match="environment IVR_AGI_PROT: unknown setting"):
        load_config(REPO / "config", environ={"IVR_AGI_PROT": "1"})


def run_ivr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def clean_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(extra)
    return env


def test_serve_without_secret_says_so_in_one_line() -> None:
    proc = run_ivr("serve", env=clean_env())
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ivr serve: missing AMI secret: set IVR_AMI_SECRET (never kept in config/)"


def test_serve_refuses_a_weak_ami_secret() -> None:
    """AMI answers every login attempt: a short or repetitive secret is guessed online."""
    key = fresh_secret()
    for weak, why in (("s3cret", "6 characters, at least 16"), ("ab" * 10, "only 2 different characters")):
        proc = run_ivr("serve", env=clean_env(IVR_AMI_SECRET=weak, IVR_CALLER_KEY=key))
        assert proc.returncode == 2
        assert proc.stderr.strip().startswith(f"ivr serve: IVR_AMI_SECRET is too weak: {why}")


def test_serve_without_caller_key_says_so_in_one_line() -> None:
    proc = run_ivr("serve", env=clean_env(IVR_AMI_SECRET="x"))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("ivr serve: missing caller key: set IVR_CALLER_KEY (at least 16 random")
    short = run_ivr("serve", env=clean_env(IVR_AMI_SECRET="x", IVR_CALLER_KEY="short"))
    assert short.stderr.strip().startswith("ivr serve: IVR_CALLER_KEY is too short: use at least 16")


def test_serve_with_port_taken_says_what_and_where() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_ivr("serve", env=clean_env(IVR_AMI_SECRET=fresh_secret(), IVR_CALLER_KEY="k" * 16, IVR_AGI_PORT=str(port)))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ivr serve: FastAGI port 127.0.0.1:{port} is already in use (agi.port from environment IVR_AGI_PORT)"
    )
    assert "Traceback" not in proc.stderr


def test_serve_with_bad_config_file_names_file_and_line(cfg: Path) -> None:
    (cfg / "engine.yaml").write_text("ami:\n  secrett: x\n")
    proc = run_ivr("--config", str(cfg), "serve", env=clean_env(IVR_AMI_SECRET="x"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"ivr serve: {cfg / 'engine.yaml'}:2:3: unknown key 'secrett'"


def test_help_lists_subcommands() -> None:
    proc = run_ivr("--help", env=clean_env())
    for name in ("serve", "testbed", "asterisk-conf", "prompts"):
        assert name in proc.stdout


def test_the_general_queue_is_required(cfg: Path) -> None:
    text = (cfg / "queues.yaml").read_text().replace("  general:\n", "  allday:\n")
    text = text.replace("overflow: general", "overflow: allday").replace("general: ", "allday: ")
    (cfg / "queues.yaml").write_text(text)
    with pytest.raises(ConfigError, match="a queue named 'general' is required"):
        load_config(cfg, environ={})


def test_queue_overflow_cycles_are_refused(cfg: Path) -> None:
    text = (cfg / "queues.yaml").read_text().replace("    wrapup: 5\n", "    wrapup: 5\n    overflow: expert-hrss\n", 1)
    (cfg / "queues.yaml").write_text(text)
    with pytest.raises(ConfigError, match="queue overflows form a cycle: general → expert-hrss → general"):
        load_config(cfg, environ={})


def test_the_config_facade_hands_out_the_owners_classes() -> None:
    """ivr.config re-exports the sections its features own: the same classes, so that the
    settings validate, compare and render into the schema exactly as before the split."""
    import ivr.config as config
    from ivr.core.hours import Hours
    from ivr.core.route import QueueRoute, TransferRoute
    from ivr.core.secret_policy import agent_secret
    from ivr.numbers.model import NumberEntry
    from queues.model import Hours as QueueHours, QueueRoute as QueueModelRoute
    from tickets.settings import TicketSettings
    from tracking.settings import TrackingSettings
    from transfer.model import TransferRoute as TransferModelRoute

    assert (config.TicketSettings, config.TrackingSettings, config.NumberEntry) == (TicketSettings, TrackingSettings, NumberEntry)
    assert config.Settings.model_fields["tickets"].annotation is TicketSettings
    assert config.Settings.model_fields["tracking"].annotation is TrackingSettings
    assert config.ENGINE_MODELS["tracking"] is TrackingSettings and config.agent_secret is agent_secret
    assert (QueueHours, QueueModelRoute, TransferModelRoute) == (Hours, QueueRoute, TransferRoute)
