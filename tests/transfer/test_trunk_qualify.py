"""Sub-center and emergency trunks are qualified (issue 22 item 8): their AORs carry the OPTIONS
probe from config (validated), a platform's does not, and a dial Asterisk made no leg for
(CHANUNAVAIL: the gateway known down) lands on the ticket with its cause."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, render
from ivr.config import ConfigError, Settings, load_config
from ivr.core.secret_policy import fresh_secret
from tickets.model import Ticket
from tracking.transfers import ivr_transfer

REPO = Path(__file__).resolve().parents[2]


def config_with(tmp_path: Path, old: str = "", new: str = "") -> Path:
    d = tmp_path / "config"
    shutil.copytree(REPO / "config", d)
    text = (d / "subcenters.yaml").read_text()
    assert old in text
    (d / "subcenters.yaml").write_text(text.replace(old, new, 1))
    return d


def aor(settings: Settings, name: str) -> str:
    files = render(settings, RenderOptions(ami_secret=fresh_secret(),
                                           agent_secrets={n: fresh_secret() for n in settings.agents}))
    found = re.search(rf"^\[{name}\]\ntype=aor\n(.*?)\n\n", files["pjsip_generated.conf"], re.S | re.M)
    assert found, name
    return found.group(1)


def test_every_sub_center_and_the_emergency_trunk_are_probed_and_a_platform_is_not(tmp_path: Path) -> None:
    s = load_config(config_with(tmp_path), environ={}).settings
    for name in [*s.subcenters, "emergency"]:
        assert aor(s, name).endswith("qualify_frequency=10\nqualify_timeout=2.0"), name
    assert aor(s, "province").endswith("qualify_frequency=0")


def test_a_trunks_probe_is_configured_per_trunk_and_every_0_turns_it_off(tmp_path: Path) -> None:
    d = config_with(tmp_path, 'number: "12366", host: 127.0.0.1, port: 5071}',
                    'number: "12366", host: 127.0.0.1, port: 5071, qualify: {every: 0}}')
    s = load_config(d, environ={}).settings
    assert aor(s, "tax").endswith("qualify_frequency=0")
    assert aor(s, "customs").endswith("qualify_frequency=10\nqualify_timeout=2.0")


@pytest.mark.parametrize("probe", ["{every: 2, timeout: 3}", "{every: -1}", "{every: 5, timeout: 0}",
                                   "{every: 5, timeout: '1\\nqualify_frequency=0'}", "{every: 5, often: 1}"])
def test_a_probe_that_cannot_work_is_refused_at_its_line(tmp_path: Path, probe: str) -> None:
    d = config_with(tmp_path, "emergency: {title: 应急联动线路, host: 127.0.0.1, port: 5079}",
                    f"emergency: {{title: 应急联动线路, host: 127.0.0.1, port: 5079, qualify: {probe}}}")
    with pytest.raises(ConfigError, match=r"subcenters\.yaml:\d+"):
        load_config(d, environ={})


def test_a_dial_asterisk_made_no_leg_for_lands_on_the_ticket_as_unavailable_with_its_cause() -> None:
    ticket = Ticket(linkedid="1.1", line="12366", caller="13900000001", received="2026-12-07T05:00:00+00:00")
    event = {"UserEvent": "IvrTransfer", "Trunk": "tax", "Number": "12366", "DialStatus": "CHANUNAVAIL",
             "Fallback": "general", "Cause": "3"}
    ivr_transfer(None, ticket, event, datetime(2026, 12, 7, 5, 0, 1, tzinfo=timezone.utc))  # type: ignore[arg-type]
    [attempt] = ticket.transfers
    assert (attempt.kind, attempt.target, attempt.result, attempt.then) == ("subcenter", "tax", "CHANUNAVAIL",
                                                                            "queue general")
    assert attempt.cause == "3 No route to destination (gateway unreachable)"
    ivr_transfer(None, ticket, {**event, "DialStatus": "BUSY", "Cause": "", "Number": "12360"},  # type: ignore[arg-type]
                 datetime(2026, 12, 7, 5, 0, 2, tzinfo=timezone.utc))
    assert ticket.transfers[1].cause == ""  # a leg's own cause comes with its Hangup
