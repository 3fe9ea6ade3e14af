"""Agents' phones are qualified (issue 22 item 8): each seat's AOR carries the OPTIONS probe of
``phones.qualify`` (config/queues.yaml, validated at its line), a desk phone's fixed contact too
unless ``fixed: false``, and ``every: 0`` dials phones blind as before."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, Settings, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]
PHONES = "phones:\n  qualify: {every: 15, timeout: 3}\n"


def config_with(tmp_path: Path, probe: str | None = None) -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    text = (d / "queues.yaml").read_text(encoding="utf-8")
    assert PHONES in text
    if probe is not None:
        (d / "queues.yaml").write_text(text.replace(PHONES, f"phones:\n  qualify: {probe}\n"), encoding="utf-8")
    return d


def aor(settings: Settings, name: str) -> str:
    files = render(settings, RenderOptions(ami_secret=fresh_secret(),
                                           agent_secrets={n: fresh_secret() for n in settings.agents}))
    found = re.search(rf"^\[{name}\]\ntype=aor\n(.*?)\n\n", files["pjsip_generated.conf"] + "\n", re.S | re.M)
    assert found, name
    return found.group(1)


def with_desk_phone(settings: Settings, agent: str) -> Settings:
    desk = settings.agents[agent].model_copy(update={"contact": f"sip:{agent}@192.0.2.10:5060"})
    return settings.model_copy(update={"agents": {**settings.agents, agent: desk}})


def test_every_seats_phone_is_probed_a_desk_phone_too_and_a_supervisors_is_not(tmp_path: Path) -> None:
    s = load_config(config_with(tmp_path), environ={}).settings
    for name in s.agents:
        assert aor(s, name).endswith("qualify_frequency=15\nqualify_timeout=3.0"), name
    assert "qualify_frequency=15\nqualify_timeout=3.0\ncontact=sip:agent1002@192.0.2.10:5060" \
        in aor(with_desk_phone(s, "agent1002"), "agent1002")


def test_fixed_false_leaves_desk_phones_unprobed_and_every_0_all_phones(tmp_path: Path) -> None:
    s = load_config(config_with(tmp_path, "{every: 5, timeout: 1, fixed: false}"), environ={}).settings
    desk = with_desk_phone(s, "agent1002")
    assert aor(desk, "agent1002").startswith("max_contacts=1\nremove_existing=yes\nqualify_frequency=0\ncontact=")
    assert aor(desk, "agent1001").endswith("qualify_frequency=5\nqualify_timeout=1.0")
    off = load_config(config_with(tmp_path / "off", "{every: 0}"), environ={}).settings
    assert all(aor(off, name).endswith("qualify_frequency=0") for name in off.agents)


@pytest.mark.parametrize("probe", ["{every: 2, timeout: 3}", "{every: -1}", "{every: 5, timeout: 0}",
                                   "{every: 5, timeout: '1\\nqualify_frequency=0'}", "{every: 5, often: 1}",
                                   "{every: 5, fixed: maybe}"])
def test_a_probe_that_cannot_work_is_refused_at_its_line(tmp_path: Path, probe: str) -> None:
    with pytest.raises(ConfigError, match=r"queues\.yaml:\d+"):
        load_config(config_with(tmp_path, probe), environ={})
