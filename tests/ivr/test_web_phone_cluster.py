"""Web phones behind the cluster's proxies (issue 23, docs/console.md): the browser registers over
WebSocket at the proxies (each proxy's ``ws`` listener), where the seat's lock is; a node serves no
WebSocket and its endpoint for the seat is ``webrtc=yes`` towards the proxies. The generated proxy
config passes ``kamailio -c``; what cannot work is refused at its line. The real call through a
proxy to Chromium is in tests/integration/test_cluster_desk.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from console.web_phone import NoWebPhone, issue_account, revoke_account
from ivr.asterisk_conf import RenderOptions, render
from ivr.asterisk_conf.kamailio_seats import ha1
from ivr.asterisk_conf.kamailio_ws import url_path
from ivr.config import ConfigError, load_config
from ivr.core.conftext import UnsafeValue
from ivr.core.secret_policy import fresh_secret
from testbed.kamailio import kamailio_binary

REPO = Path(__file__).resolve().parents[2]
SEAT = "agent1002: {name: 综合座席1002, skills: {general: 0}}"
WEB_SEAT = "agent1002: {name: 综合座席1002, skills: {general: 0}, phone: web}"
PHONES = "phones:\n  qualify: {every: 15, timeout: 3}\n"
WEB = PHONES + '  web: {url: "wss://hotline.example.gov.cn/desk-ws"}\n'
TOPOLOGY = """\
cluster:
  proxies:
    edge-a: {{sip: "127.0.0.2:5060"{a}}}
    edge-b: {{sip: "127.0.0.3:5060"{b}}}
  nodes:
    ast-a: {{sip: "10.0.0.11:5060", ami: "10.0.0.11:5038", rtp_start: 10000, rtp_end: 10999, engines: ["10.0.0.21:4573"]}}
    ast-b: {{sip: "10.0.0.12:5060", ami: "10.0.0.12:5038", rtp_start: 11000, rtp_end: 11999, engines: ["10.0.0.22:4573"]}}
"""
WS = {"a": ', ws: "127.0.0.2:8088"', "b": ', ws: "127.0.0.3:8088"'}


def cfg(tmp_path: Path, *, web: bool = True, a: str = WS["a"], b: str = WS["b"]) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    text = (d / "queues.yaml").read_text()
    assert SEAT in text and PHONES in text
    if web:
        text = text.replace(SEAT, WEB_SEAT).replace(PHONES, WEB)
    (d / "queues.yaml").write_text(text)
    engine = (d / "engine.yaml").read_text()
    (d / "engine.yaml").write_text(engine.replace("pstn_match: [127.0.0.1]", "pstn_match: [10.0.0.1]"))
    (d / "cluster.yaml").write_text(TOPOLOGY.format(a=a, b=b))
    return d


def files(config: Path, kamailio_dir: Path) -> dict[str, str]:
    settings = load_config(config, environ={}).settings
    return render(settings, RenderOptions(ami_secret=fresh_secret(), seats_ami_secret=fresh_secret(),
                                          testbed_ami_secret=fresh_secret(), node="ast-a",
                                          agent_secrets={n: fresh_secret() for n in settings.agents},
                                          kamailio_dir=str(kamailio_dir), kamailio_run_dir=str(kamailio_dir)))


def test_a_web_seat_registers_at_the_proxies_websocket_and_its_node_endpoint_is_webrtc_towards_them(tmp_path: Path) -> None:
    out = files(cfg(tmp_path), tmp_path)
    assert out["http.conf"] == "[general]\nenabled=no\n"  # the node serves no WebSocket
    pjsip = out["pjsip_generated.conf"]
    assert "protocol=ws" not in pjsip
    endpoint = pjsip.split("[agent1002]\ntype=endpoint\n")[1].split("\n\n")[0]
    assert "webrtc=yes\n" in endpoint and "allow=ulaw,alaw,opus\n" in endpoint
    aor = pjsip.split("[agent1002]\ntype=aor\n")[1].split("\n\n")[0]
    assert "contact=sip:agent1002@127.0.0.2:5060\ncontact=sip:agent1002@127.0.0.3:5060\n" in aor
    for proxy, listen in (("edge-a", "127.0.0.2:8088"), ("edge-b", "127.0.0.3:8088")):
        kam = out[f"kamailio-{proxy}.cfg"]
        assert "disable_tcp=no\n" in kam and f"listen=tcp:{listen} " in kam
        assert re.search(r'\$Rp == 8088 && \$hu == "/desk-ws" .*\n.*\n        if \(ws_handle_handshake\(\)\)', kam)
        assert all(f'loadmodule "{m}.so"' in kam for m in ("xhttp", "websocket", "nathelper"))
        # a browser's contact is its connection; requests to it go there, its Contact aliased
        assert '$avp(seat_contact) = $sut;' in kam
        assert kam.count("$du = $ulc(phone=>received);") == 2  # the seat's INVITE and the nodes' probe
        assert "handle_ruri_alias();" in kam and "add_contact_alias();" in kam
        # the dialog keepalive would probe a browser at its made-up Contact and end the call
        assert 'if ($var(browser) == 0) {\n        dlg_set_property("ka-dst");' in kam
    # the real Kamailio parses what was written (its include beside it)
    for name in ("kamailio-edge-a.cfg", "kamailio-seats-ha1.cfg", "dispatcher.list"):
        (tmp_path / name).write_text(out[name])
    done = subprocess.run([kamailio_binary(), "-c", "-f", str(tmp_path / "kamailio-edge-a.cfg")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_behind_proxies_a_web_seat_keeps_its_own_secret_which_the_proxies_and_the_node_check(tmp_path: Path) -> None:
    """The proxies check a seat's digest against HA1 keys rendered from its secret, so a per-sign-in
    password in one node's AstDB would lock the seat out: behind proxies the file keeps the account."""
    config = cfg(tmp_path)
    settings = load_config(config, environ={}).settings
    secrets = {n: fresh_secret() for n in settings.agents}
    out = render(settings, RenderOptions(ami_secret=fresh_secret(), seats_ami_secret=fresh_secret(),
                                         testbed_ami_secret=fresh_secret(), node="ast-a", agent_secrets=secrets,
                                         kamailio_dir=str(tmp_path), kamailio_run_dir=str(tmp_path)))
    pjsip = out["pjsip_generated.conf"]
    assert (f"[agent1002-auth]\ntype=auth\nauth_type=userpass\nusername=agent1002\n"
            f"password={secrets['agent1002']}\n") in pjsip
    assert "in AstDB" not in pjsip
    assert ha1("agent1002", secrets["agent1002"]) in out["kamailio-seats-ha1.cfg"]


async def test_behind_proxies_the_console_issues_the_seats_own_secret_and_revokes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_config(cfg(tmp_path), environ={}).settings
    secret = fresh_secret()
    monkeypatch.setenv("IVR_AGENT_SECRET_AGENT1002", secret)
    issued = await issue_account(settings, "agent1002")  # no AMI session: nothing to install
    assert (issued.user, issued.password, issued.ws) == ("agent1002", secret, "wss://hotline.example.gov.cn/desk-ws")
    assert await revoke_account(settings, "agent1002") is False
    monkeypatch.delenv("IVR_AGENT_SECRET_AGENT1002")
    with pytest.raises(NoWebPhone, match="未配置"):
        await issue_account(settings, "agent1002")


def test_without_web_seats_the_proxies_open_no_tcp_even_with_ws_set(tmp_path: Path) -> None:
    out = files(cfg(tmp_path, web=False), tmp_path)
    for proxy in ("edge-a", "edge-b"):
        kam = out[f"kamailio-{proxy}.cfg"]
        assert "disable_tcp=yes\n" in kam and "listen=tcp:" not in kam and "websocket" not in kam


def test_a_web_seat_behind_a_proxy_without_ws_is_refused_at_its_line(tmp_path: Path) -> None:
    config = cfg(tmp_path, b="")
    line = next(i for i, text in enumerate((config / "queues.yaml").read_text().splitlines(), 1)
                if text.startswith("  agent1002:"))
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line}:\d+: .*set ws on every proxy .*missing on edge-b\)"):
        load_config(config, environ={})


def test_a_ws_listener_on_an_address_already_taken_is_refused_at_its_line(tmp_path: Path) -> None:
    config = cfg(tmp_path, b=', ws: "127.0.0.2:8088"')
    with pytest.raises(ConfigError, match=r"cluster.yaml:4:\d+: .*127.0.0.2:8088 is already proxies edge-a ws"):
        load_config(config, environ={})


@pytest.mark.parametrize(("url", "path"), [("wss://h.example/ws", "/ws"), ("ws://127.0.0.1:8088", "/"),
                                           ("wss://[::1]:443/a/b_c.d-e", "/a/b_c.d-e")])
def test_the_handshake_path_is_the_urls(url: str, path: str) -> None:
    assert url_path(url) == path


@pytest.mark.parametrize("url", ["wss://h/a/../b", 'wss://h/w"s', "wss://h/w s", "wss://h/$(ru)"])
def test_a_path_kamailio_could_misread_is_refused(url: str) -> None:
    with pytest.raises(UnsafeValue):
        url_path(url)
