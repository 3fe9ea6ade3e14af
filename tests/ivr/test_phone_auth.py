"""A web-phone seat's per-sign-in password (issue 23): pjsip_generated.conf holds no digest account
for it (its endpoint names ``<seat>-auth``, which sorcery.conf makes PJSIP look up in AstDB after
pjsip.conf), the static secret of a web seat is neither needed nor written, and the AstDB record
the console writes over AMI has res_sorcery_astdb's shape with nothing unchecked in it. The real
Asterisk takes it in tests/integration/test_console_web_phone.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import load_config
from ivr.core.phone_auth import AUTH_FAMILY, BadAccount, auth_id, auth_value, new_password
from ivr.core.secret_policy import fresh_secret
from tests.ivr import test_web_phone_render as web_render
from tests.ivr.test_web_phone_render import SEAT, WEB, WEB_SEAT, edit, endpoint

cfg = web_render.cfg  # the repository's config/, copied for the test to edit

WEB_ON = (WEB, WEB + '  web: {listen: "127.0.0.1:8089", url: "wss://hotline.example/ws"}\n')


def test_a_web_seat_has_no_digest_account_in_the_file_and_needs_no_static_secret(cfg: Path) -> None:
    edit(cfg, (SEAT, WEB_SEAT), WEB_ON)
    settings = load_config(cfg, environ={}).settings
    secrets = {n: fresh_secret() for n in settings.agents if n != "agent1002"}  # none for the web seat
    pjsip = render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=secrets))["pjsip_generated.conf"]
    assert endpoint(pjsip, "agent1002").endswith("\nauth=agent1002-auth")
    assert "[agent1002-auth]" not in pjsip and "username=agent1002" not in pjsip
    assert f"; agent1002-auth: in AstDB ({AUTH_FAMILY})" in pjsip
    def aor(name: str) -> str:
        return pjsip.split(f"[{name}]\ntype=aor\n")[1].split("\n\n")[0]
    assert aor("agent1002").endswith("maximum_expiration=120") and "maximum_expiration" not in aor("agent1001")
    assert f"[agent1001-auth]\ntype=auth\nauth_type=userpass\nusername=agent1001\npassword={secrets['agent1001']}\n" in pjsip


def test_sorcery_looks_up_auth_objects_in_the_file_first_then_in_the_astdb_family_the_console_writes(cfg: Path) -> None:
    settings = load_config(cfg, environ={}).settings
    out = render(settings, RenderOptions(ami_secret=fresh_secret(),
                                         agent_secrets={n: fresh_secret() for n in settings.agents}))
    lines = [line for line in out["sorcery.conf"].splitlines() if line and not line.startswith(";")]
    assert lines == ["[res_pjsip]", "auth=config,pjsip.conf,criteria=type=auth", f"auth=astdb,{AUTH_FAMILY.split('/')[0]}"]
    assert AUTH_FAMILY.endswith("/auth")  # res_sorcery_astdb: <prefix>/<object type>
    assert "load => res_sorcery_astdb.so" in out["modules.conf"]


def test_the_astdb_record_is_the_seats_userpass_account_as_json() -> None:
    password = new_password()
    assert len(password) >= 32 and password != new_password()
    assert auth_id("agent1003") == "agent1003-auth"
    assert json.loads(auth_value("agent1003", password)) == {
        "auth_type": "userpass", "username": "agent1003", "password": password}


@pytest.mark.parametrize(("seat", "password"), [
    ("agent1003", 'x"}\r\nAction: Originate'), ("agent1003", "short"), ("agent1003", "a b" * 12),
    ("agent 1003", "A" * 32), ("agent1003\r\nAction: Originate", "A" * 32), ("", "A" * 32),
])
def test_nothing_but_a_seat_name_and_a_url_safe_password_goes_into_the_ami_headers(seat: str, password: str) -> None:
    with pytest.raises(BadAccount):
        auth_value(seat, password)
