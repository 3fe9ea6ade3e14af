"""ICE servers for the desk page's WebRTC phone (issue 23): ``phones.web.ice_servers`` checked at
their line, the TURN secret named by config (an environment variable or a file, never in it), the
per-sign-in TURN credentials the console issues (coturn's REST API: checked against a vector
computed with openssl, not with this code), and rtp.conf's ``stunaddr`` for an Asterisk behind
NAT. The page's use of them is tested in tests/integration/test_console_web_phone.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from console.web_phone import NoWebPhone, ice_config
from ivr.asterisk_conf import RenderOptions, render
from ivr.core.reasons_zh import explain
from ivr.config import ConfigError, Settings, load_config, turn_secret_problem
from ivr.core.ice import turn_credentials
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
WEB_SEAT = ("agent1002: {name: 综合座席1002, skills: {general: 0}}",
            "agent1002: {name: 综合座席1002, skills: {general: 0}, phone: web}")
PHONES = "phones:\n  qualify: {every: 15, timeout: 3}\n"
# `printf '%s' '1767225600:agent1003' | openssl dgst -sha1 -hmac 'Zq8vR2pLx7TnW4yK9sHf3c' -binary | base64`
VECTOR = ("Zq8vR2pLx7TnW4yK9sHf3c", "1767225600:agent1003", "AfJVyXzkH+plokfVNQEHwep7x4Y=")


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    text = (d / "queues.yaml").read_text()
    assert WEB_SEAT[0] in text and PHONES in text
    (d / "queues.yaml").write_text(text.replace(*WEB_SEAT))
    return d


def with_web(cfg: Path, *lines: str) -> int:
    """``phones.web`` of the given lines (indented under it); returns the first line's number."""
    text = (cfg / "queues.yaml").read_text()
    body = "".join(f"    {line}\n" for line in lines) or "    {}\n"
    (cfg / "queues.yaml").write_text(text.replace(PHONES, PHONES + "  web:\n" + body))
    return text[:text.index(PHONES)].count("\n") + 4


def settings(cfg: Path) -> Settings:
    return load_config(cfg, environ={}).settings


def test_the_turn_credentials_are_coturns_rest_api_ones() -> None:
    secret, username, password = VECTOR
    issued = turn_credentials(secret, "agent1003", 1767225600 - 43200 + 0.7, 43200)
    assert (issued.username, issued.password, issued.expires) == (username, password, 1767225600)


def test_the_page_gets_the_stun_servers_and_the_turn_ones_with_this_sign_ins_credentials(
        cfg: Path, tmp_path: Path) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_text(VECTOR[0] + "\n")
    with_web(cfg, "ice_servers: ['stun:stun.example.gov.cn', 'turn:198.51.100.7:3478?transport=udp',",
             "              'turns:[2001:db8::7]:5349']",
             f"turn_secret: {{file: {secret}}}", "turn_lifetime: 3600")
    ice = ice_config(settings(cfg), "agent1003", now=1767225600 - 3600)
    assert ice == [{"urls": ["stun:stun.example.gov.cn"]},
                   {"urls": ["turn:198.51.100.7:3478?transport=udp", "turns:[2001:db8::7]:5349"],
                    "username": VECTOR[1], "credential": VECTOR[2]}]
    later = ice_config(settings(cfg), "agent1003", now=1767225600)  # the next sign-in: another pair
    assert later[1]["username"] == "1767229200:agent1003" and later[1]["credential"] != VECTOR[2]


def test_without_ice_servers_the_page_gets_none_and_stun_alone_needs_no_secret(cfg: Path) -> None:
    with_web(cfg, "ice_servers: ['stun:192.0.2.1:3478']")
    assert ice_config(settings(cfg), "agent1002") == [{"urls": ["stun:192.0.2.1:3478"]}]
    assert ice_config(load_config(REPO / "config", environ={}).settings, "agent1002") == []


@pytest.mark.parametrize(("url", "why"), [
    ("stun:user:pass@stun.example", "no user or password in an ICE server's URL"),
    ("turn:turn.example:3478?transport=sctp", "is not stun:host"),
    ("http://turn.example", "is not stun:host"),
    ("stuns:stun.example", "is not stun:host"),
    ("stun:stun.example:70000", "port 70000 is not 1-65535"),
    ("stun:stun.example?transport=udp", "transport= is for turn: and turns: only"),
    ("turn:bad_host:3478", "is not a host name or IP address"),
    ("turn:[::zz]:3478", "is not stun:host"),
    ("turn:[fe80::1%eth0]:3478", "is not stun:host"),
    ("turn:[1.2.3.4]:3478", "is not a host name or IP address"),
    ("stun:a.example;x", "is not a host name or IP address"),
])
def test_a_bad_ice_server_is_refused_at_its_line(cfg: Path, url: str, why: str) -> None:
    line = with_web(cfg, "ice_servers:", f"  - {url!r}")
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line + 1}:\d+: .*{why}"):
        settings(cfg)


@pytest.mark.parametrize(("lines", "why"), [
    (("ice_servers: ['turn:turn.example']",), "a turn: or turns: server needs turn_secret"),
    (("ice_servers: ['stun:stun.example']", "turn_secret: {env: IVR_TURN_SECRET}"), "ice_servers names no turn"),
    (("ice_servers: ['turns:turn.example']", "turn_secret: {env: IVR_TURN_SECRET, file: /etc/ivr/turn}"),
     "turn_secret names one source"),
    (("ice_servers: ['turns:turn.example']", "turn_secret: {env: 'A;B'}"), "String should match pattern"),
    (("ice_servers: ['turns:turn.example']", "turn_secret: {env: IVR_T}", "turn_lifetime: 60"),
     "greater than or equal to 600"),
    (("asterisk_stun: 'stun.example:3478;x'",), "is not host:port"),
    (("asterisk_stun: stun.example",), "is not host:port"),
])
def test_a_bad_turn_or_asterisk_stun_setting_is_refused_at_its_line(cfg: Path, lines: tuple[str, ...], why: str) -> None:
    line = with_web(cfg, *lines)
    with pytest.raises(ConfigError, match=rf"queues.yaml:({line - 1}|{line}|{line + 1}|{line + 2}):\d+: .*{why}"):
        settings(cfg)


def test_an_unreadable_empty_or_weak_turn_secret_is_named_before_an_agent_meets_it(cfg: Path, tmp_path: Path) -> None:
    with_web(cfg, "ice_servers: ['turn:turn.example']", f"turn_secret: {{file: {tmp_path}/nowhere}}")
    web = settings(cfg).phones.web
    assert web is not None and web.turn_secret is not None
    assert "is unreadable" in str(turn_secret_problem(web.turn_secret))
    assert explain(str(turn_secret_problem(web.turn_secret))).text.endswith("无法读取（phones.web.turn_secret）")
    with pytest.raises(NoWebPhone, match="TURN"):  # the page says so instead of a call without its relay
        ice_config(settings(cfg), "agent1002")
    (tmp_path / "nowhere").write_text("\n")
    assert f"{tmp_path}/nowhere is not set (phones.web.turn_secret: empty or unset)" == turn_secret_problem(web.turn_secret)
    (tmp_path / "nowhere").write_text("short\n")
    assert "too weak" in str(turn_secret_problem(web.turn_secret))
    (tmp_path / "nowhere").write_text(VECTOR[0])
    assert turn_secret_problem(web.turn_secret) is None
    by_env = web.turn_secret.model_copy(update={"env": "IVR_TURN_SECRET", "file": None})
    assert "IVR_TURN_SECRET is not set (phones.web.turn_secret: empty or unset)" == turn_secret_problem(by_env, {})
    for problem in (turn_secret_problem(by_env, {}), turn_secret_problem(by_env, {"IVR_TURN_SECRET": "short"})):
        assert problem and not explain(problem).detail, problem  # each reads as Mandarin on a staff page
    assert turn_secret_problem(by_env, {"IVR_TURN_SECRET": VECTOR[0]}) is None


def test_rtp_conf_names_asterisks_stun_server_only_when_the_operator_sets_it(cfg: Path) -> None:
    def rtp(s: Settings) -> str:
        return render(s, RenderOptions(ami_secret=fresh_secret(), agent_secrets={n: fresh_secret() for n in s.agents}))["rtp.conf"]

    with_web(cfg, "ice_servers: ['stun:stun.example.gov.cn:3478']")
    assert "stun" not in rtp(settings(cfg))
    text = (cfg / "queues.yaml").read_text()
    (cfg / "queues.yaml").write_text(text.replace("  web:\n", "  web:\n    asterisk_stun: '203.0.113.9:3478'\n"))
    assert rtp(settings(cfg)).endswith("rtpend=10999\nstunaddr=203.0.113.9:3478\n")
