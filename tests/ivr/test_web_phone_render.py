"""The desk page's WebRTC phone in Asterisk's files (issue 23): a seat with ``phone: web`` gets a
WebRTC endpoint (DTLS-SRTP, ICE, G.711 before Opus), the HTTP server carrying the WebSocket is
on only then, on loopback; a bad ``phones.web`` or a web phone that cannot work is refused at
its line. The real Asterisk registers the page's phone in
tests/integration/test_console_web_phone.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, Settings, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
SEAT = "agent1002: {name: 综合座席1002, skills: {general: 0}}"
WEB_SEAT = "agent1002: {name: 综合座席1002, skills: {general: 0}, phone: web}"
WEB = "phones:\n  qualify: {every: 15, timeout: 3}\n"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    return d


def edit(cfg: Path, *pairs: tuple[str, str]) -> None:
    text = (cfg / "queues.yaml").read_text()
    for old, new in pairs:
        assert old in text
        text = text.replace(old, new, 1)
    (cfg / "queues.yaml").write_text(text)


def line_of(cfg: Path, start: str) -> int:
    """The line of queues.yaml that starts with ``start`` (what an error must name)."""
    lines = (cfg / "queues.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(start))


def files(settings: Settings) -> dict[str, str]:
    return render(settings, RenderOptions(ami_secret=fresh_secret(),
                                          agent_secrets={n: fresh_secret() for n in settings.agents}))


def endpoint(pjsip: str, name: str) -> str:
    return pjsip.split(f"[{name}]\ntype=endpoint\n")[1].split("\n\n")[0]


def test_without_a_web_phone_the_http_server_is_off_and_seats_are_softphones(cfg: Path) -> None:
    out = files(load_config(cfg, environ={}).settings)
    assert out["http.conf"] == "[general]\nenabled=no\n"
    assert "protocol=ws" not in out["pjsip_generated.conf"] and "webrtc" not in out["pjsip_generated.conf"]


def test_a_web_phone_seat_gets_a_webrtc_endpoint_and_the_websocket_on_loopback(cfg: Path) -> None:
    edit(cfg, (SEAT, WEB_SEAT), (WEB, WEB + "  web: {listen: \"127.0.0.1:8089\", url: \"wss://hotline.example/ws\"}\n"))
    out = files(load_config(cfg, environ={}).settings)
    assert out["http.conf"] == ("[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport=8089\n"
                                "enablestatic=no\nenable_status=no\n")
    pjsip = out["pjsip_generated.conf"]
    assert "[transport-ws]\ntype=transport\nprotocol=ws\n" in pjsip
    web = endpoint(pjsip, "agent1002")
    assert "allow=ulaw,alaw,opus\n" in web and "webrtc=yes\ndtls_auto_generate_cert=yes\n" in web
    assert "auth=agent1002-auth" in web and "set_var=TRANSFER_CONTEXT=" in web  # a seat like any other
    other = endpoint(pjsip, "agent1001")
    assert "webrtc" not in other and "allow=ulaw,alaw\n" in other


def test_the_operators_dtls_certificate_is_used_when_given(cfg: Path) -> None:
    edit(cfg, (SEAT, WEB_SEAT),
         (WEB, WEB + "  web: {dtls_cert: /etc/ivr/dtls.pem, dtls_key: /etc/ivr/dtls.key}\n"))
    web = endpoint(files(load_config(cfg, environ={}).settings)["pjsip_generated.conf"], "agent1002")
    assert "dtls_cert_file=/etc/ivr/dtls.pem\ndtls_private_key=/etc/ivr/dtls.key\n" in web
    assert "dtls_auto_generate_cert" not in web


@pytest.mark.parametrize(("web", "why"), [
    ("{}", None),
    ("{dtls_cert: /etc/ivr/dtls.pem}", "dtls_cert and dtls_key go together"),
    ("{dtls_cert: \"/etc/x.pem;x\", dtls_key: /etc/k}", "String should match pattern"),
    ("{url: \"ws://a/ws\\nx\"}", "String should match pattern"),
    ("{url: \"http://a/ws\"}", "String should match pattern"),
    ("{listen: \"localhost:8088\"}", "an IP address, not a host name"),
])
def test_a_bad_web_section_is_refused_at_its_line(cfg: Path, web: str, why: str | None) -> None:
    edit(cfg, (WEB, WEB + f"  web: {web}\n"))
    if why is None:
        assert load_config(cfg, environ={}).settings.phones.web is not None
        return
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line_of(cfg, '  web:')}:\d+: .*{why}"):
        load_config(cfg, environ={})


def test_a_web_phone_without_the_web_section_or_with_a_fixed_contact_is_refused_at_its_line(cfg: Path) -> None:
    edit(cfg, (SEAT, WEB_SEAT))
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line_of(cfg, '  agent1002:')}:\d+: .*a web phone needs phones.web"):
        load_config(cfg, environ={})
    edit(cfg, (WEB_SEAT, WEB_SEAT.replace("phone: web", "phone: web, contact: \"sip:a@127.0.0.1\"")),
         (WEB, WEB + "  web: {}\n"))
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line_of(cfg, '  agent1002:')}:\d+: .*remove the fixed contact"):
        load_config(cfg, environ={})
    edit(cfg, ("phone: web, contact: \"sip:a@127.0.0.1\"", "phone: phone"))
    with pytest.raises(ConfigError, match=rf"queues.yaml:{line_of(cfg, '  agent1002:')}:\d+: .*Input should be 'sip' or 'web'"):
        load_config(cfg, environ={})
