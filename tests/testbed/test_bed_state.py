"""A bed's saved state is read by every checkout sharing the registry: fields one version does
not know (another branch's, a newer one's) are dropped, not fatal to `ivr testbed status`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from testbed.bed import RTP_PORTS, BedState


def test_given_a_state_with_an_unknown_field_then_it_loads_without_it(tmp_path: Path) -> None:
    state = BedState(name="b", dir="/d", runner="rootfs", sip_port=1, ami_port=2, agi_port=3, redis_port=4,
                     pstn_port=5, rtp_start=6, agent_ports={}, subcenter_ports={}, ami_secret="x",
                     testbed_ami_secret="y", config_dir="/c")
    path = tmp_path / "b.json"
    path.write_text(json.dumps({**dataclasses.asdict(state), "from_another_branch": 1}))
    assert BedState.load(path) == state
    assert state.rtp_ports == RTP_PORTS and state.dns_address == ""
