"""Every endpoint binds RTP to a set address: with 0.0.0.0 Asterisk looks up its own host name
and A.ROOT-SERVERS.NET for every call leg (tests/integration/test_no_dns.py shows it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]


def pjsip(environ: dict[str, str]) -> str:
    settings = load_config(REPO / "config", environ=environ).settings
    options = RenderOptions(ami_secret=fresh_secret(), agent_secrets={name: fresh_secret() for name in settings.agents})
    return render(settings, options)["pjsip_generated.conf"]


def endpoints(conf: str) -> list[str]:
    return [block for block in re.split(r"\n(?=\[)", conf) if "type=endpoint" in block]


def test_given_the_shipped_config_then_every_endpoint_binds_rtp_to_the_sip_address() -> None:
    blocks = endpoints(pjsip({}))
    assert len(blocks) > 3  # the carrier trunk, the agents, the sub-centers
    for block in blocks:
        assert "media_address=127.0.0.1\n" in block and "bind_rtp_to_media_address=yes\n" in block, block


def test_given_a_media_address_then_it_is_used_even_with_sip_on_all_addresses() -> None:
    blocks = endpoints(pjsip({"IVR_SIP_BIND": "0.0.0.0", "IVR_SIP_MEDIA_ADDRESS": "10.1.2.3"}))
    assert all("media_address=10.1.2.3\n" in block for block in blocks)


def test_given_sip_on_all_addresses_and_no_media_address_then_render_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="set sip.media_address"):
        pjsip({"IVR_SIP_BIND": "0.0.0.0"})
