"""Dialplan and config injection through values that reach generated Asterisk files (issue 17,
finding 4, and the Low items on secrets, IPv6 and webhooks): each attack is refused by the
config model with file:line, and the renderer alone refuses it too (a value that skipped the
model: a field added later, settings built in code)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr import cli
from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, Settings, load_config
from ivr.core.secret_policy import fresh_secret
from testbed.hostile import INJECTED_TITLE, inject_title

REPO = Path(__file__).resolve().parents[2]
PLAN = "anhui-2021.yaml"
BREAK = "control or line-break character U+000A is not allowed"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    return tmp_path / "config"


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (once) in ``path``; the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def options(settings: Settings, **override: str) -> RenderOptions:
    return RenderOptions(ami_secret=override.pop("ami_secret", fresh_secret()),
                         agent_secrets={n: override.get(n) or fresh_secret() for n in settings.agents})


def test_ivr_check_refuses_a_title_that_injects_dialplan_with_the_plans_line(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = cfg / "plans" / PLAN
    text = inject_title(plan.read_text(encoding="utf-8"), "12366")
    plan.write_text(text, encoding="utf-8")
    line = text[: text.index('"12366":')].count("\n") + 1
    assert cli.main(["--config", str(cfg), "check"]) == 1
    out = capsys.readouterr().out
    assert f"{plan}:{line}:" in out and "numbers.12366.title" in out and BREAK in out


def test_the_renderer_alone_refuses_an_injected_title() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    entry = settings.numbers["12366"].model_construct(**{**dict(settings.numbers["12366"]), "title": INJECTED_TITLE})
    hostile = settings.model_copy(update={"numbers": {**settings.numbers, "12366": entry}})
    with pytest.raises(ConfigError, match="^" + re.escape(f"refused to render Asterisk's configuration: numbers.12366.title: {BREAK}")):
        render(hostile, options(hostile))


def test_the_renderer_refuses_dialplan_evaluation_in_a_name_it_writes_into_noop() -> None:
    """No line break, so the guard lets it by: the checked writer of dialplan arguments stops it."""
    settings = load_config(REPO / "config", environ={}).settings
    agent = settings.agents["agent1001"].model_construct(**{**dict(settings.agents["agent1001"]),
                                                            "name": "${SHELL(touch /tmp/x)}"})
    hostile = settings.model_copy(update={"agents": {**settings.agents, "agent1001": agent}})
    with pytest.raises(ConfigError, match=r"dialplan text '\$\{SHELL\(touch /tmp/x\)\}': character '\$\{\}' is not allowed"):
        render(hostile, options(hostile))


@pytest.mark.parametrize(("file", "old", "new", "field", "reason"), [
    ("queues.yaml", "{name: 综合座席1001,", '{name: "座席\\n[from-agents]\\nexten => _X.,1,Dial(PJSIP/${EXTEN}@tax)",',
     "agents.agent1001.name", BREAK),
    ("queues.yaml", "{name: 综合座席1002,", '{name: "${SHELL(id)}",', "agents.agent1002.name", "character '${}' is not allowed"),
    ("queues.yaml", '  "1": 小休', '  "1": "小休\\n[ivr-injected]"', "pause_reasons.1", BREAK),
    ("queues.yaml", "    title: 7×24综合座席", '    title: "综合\\r\\n[x]"', "queues.general.title", "U+000D"),
    ("queues.yaml", "    wrapup: 5\n", "    music: \"default\\n[x]\"\n    wrapup: 5\n", "queues.general.music", "should match pattern"),
    ("subcenters.yaml", "host: 127.0.0.1, port: 5071", 'host: "127.0.0.1\\nmatch=0.0.0.0/0", port: 5071',
     "subcenters.tax.host", "is not a host name or IP address"),
    ("subcenters.yaml", "title: 12360海关热线", 'title: "海关\\u2028[x]"', "subcenters.customs.title", "U+2028"),
    ("engine.yaml", "pstn_match: [127.0.0.1]", 'pstn_match: ["127.0.0.1\\nmatch=0.0.0.0/0"]', "sip.pstn_match.0",
     "is not a host name or IP address"),
    ("engine.yaml", "pstn_contact: sip:127.0.0.1:5080", 'pstn_contact: "sip:127.0.0.1:5080;x=\\n[pstn]"', "sip.pstn_contact",
     "is not a sip: URI"),
    ("engine.yaml", "  username: ivr\n", '  username: "ivr]\\n[evil"\n', "ami.username", "should match pattern"),
    ("engine.yaml", "  host: 127.0.0.1\n  port: 5038", '  host: "127.0.0.1\\nenabled = yes"\n  port: 5038', "ami.host",
     "is not a host name or IP address"),
])
def test_every_value_rendered_into_asterisk_is_refused_by_the_model_at_its_line(
        cfg: Path, file: str, old: str, new: str, field: str, reason: str) -> None:
    line = edit(cfg / file, old, new)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, environ={})
    assert str(err.value).startswith(f"{cfg / file}:{line}:") and field in str(err.value) and reason in str(err.value), err.value


def test_a_name_or_number_with_a_trailing_line_break_is_refused(cfg: Path) -> None:
    """Python's ``$`` matches before a final newline: names and numbers are matched in full."""
    line = edit(cfg / "numbers.yaml", "numbers: {}", 'numbers: {"12399\\n": {mode: dual, title: 测试}}')
    with pytest.raises(ConfigError, match=rf"numbers.yaml:{line}:\d+: number '12399\\n' must be 3-16 digits"):
        load_config(cfg, environ={})


def test_manager_conf_denies_ipv6_as_well_as_ipv4() -> None:
    settings = load_config(REPO / "config", environ={}).settings
    manager = render(settings, options(settings))["manager.conf"]
    users = [block for block in manager.split("\n[")[1:] if "secret = " in block]
    assert users
    for block in users:
        assert "deny = 0.0.0.0/0.0.0.0\ndeny = ::/0\n" in block
        assert [line for line in block.splitlines() if line.startswith("permit")] == [
            "permit = 127.0.0.1/255.255.255.255", "permit = ::1/128"]


@pytest.mark.parametrize(("weak", "why"), [
    ("amisecret", "9 characters, at least 16"), ("x" * 20, "only 1 different characters"),
    ("Kq7Lm2Vx;p9Rz4Tn8", "may not contain ';'")])
def test_the_renderer_refuses_weak_or_comment_breaking_secrets(weak: str, why: str) -> None:
    settings = load_config(REPO / "config", environ={}).settings
    with pytest.raises(ConfigError, match=f"IVR_AMI_SECRET.*{why}"):
        render(settings, options(settings, ami_secret=weak))
    with pytest.raises(ConfigError, match=f"IVR_AGENT_SECRET_AGENT1002.*{why}"):
        render(settings, options(settings, agent1002=weak))


def test_ivr_check_refuses_a_weak_ami_secret(cfg: Path) -> None:
    env = {"IVR_AMI_SECRET": "12345678", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "ivr", "--config", str(cfg), "check"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    assert "IVR_AMI_SECRET is too weak: 8 characters, at least 16 needed" in proc.stdout


def test_a_webhook_with_unmasked_callers_must_use_https(cfg: Path) -> None:
    line = edit(cfg / "tickets.yaml", "  webhooks: {}\n",
                "  webhooks:\n    city: {url: http://dept.example/hook, unmasked_caller: true}\n") + 1
    with pytest.raises(ConfigError, match=rf"tickets.yaml:{line}:\d+: .*unmasked_caller sends caller numbers in full: "
                                          "the url must be https://"):
        load_config(cfg, environ={})
    edit(cfg / "tickets.yaml", "unmasked_caller: true}", "unmasked_caller: true, plain_http: true}")
    assert load_config(cfg, environ={}).settings.tickets.webhooks["city"].plain_http  # an explicit opt-in


def test_a_line_break_in_any_text_is_refused_at_load_even_where_no_type_forbids_it(cfg: Path) -> None:
    """The compliance reason is not written into Asterisk today; the check refuses what the
    renderer's guard would, so a value never passes ``ivr check`` and fails at render."""
    line = edit(cfg / "plans" / PLAN, 'compliance: {exempt: "demo line', 'compliance: {exempt: "demo\\nline')
    with pytest.raises(ConfigError, match=rf"{PLAN}:{line}:\d+: numbers.8000.compliance.exempt: {re.escape(BREAK)}"):
        load_config(cfg, environ={})
