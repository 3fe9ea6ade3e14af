"""Ports of beds in other processes: pytest-xdist workers (and colleagues' runs, other
checkouts) start beds side by side, and a port one bed binds only at times (a softphone's,
Asterisk's RTP range) must never be handed to another."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from pathlib import Path

import pytest

from testbed.bed import BedState
from testbed.ports import PortAllocator
from testbed.state import held_ports, registered_ports, registry_dir, registry_lock

LOW, HIGH = 20000, 21000  # a narrow range: a bed registered over most of it leaves few ports


@pytest.fixture(autouse=True)
def own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of this test's own (the real one lists whatever runs on the machine)."""
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path))
    return registry_dir()


def saved_bed(**ports: object) -> dict[str, object]:
    state = BedState(name="other", dir="/d", runner="rootfs", sip_port=20950, ami_port=20952, agi_port=20954,
                     redis_port=20956, pstn_port=20958, rtp_start=LOW, agent_ports={"a1": 20960},
                     subcenter_ports={"tax": 20962}, ami_secret="x", testbed_ami_secret="y", config_dir="/c",
                     rtp_ports=900)
    return {**dataclasses.asdict(state), **ports}


def test_given_a_saved_bed_then_every_port_field_and_its_rtp_range_are_held() -> None:
    # fields another checkout adds (a cluster bed's) follow the naming rule and count as well
    saved = saved_bed(engine_ports=[20970, 20972], sentinel_ports=[20974], web_ports=[], redis_pids=[1234])

    held = held_ports(saved)

    assert held == {20950, 20952, 20954, 20956, 20958, 20960, 20962, 20970, 20972, 20974, *range(LOW, LOW + 900)}
    assert 900 not in held and 1234 not in held  # the range's size and a pid are no ports


def test_given_a_bed_registered_by_another_process_then_the_allocator_never_hands_out_its_ports(own_registry: Path) -> None:
    saved = saved_bed()
    (own_registry / "other.json").write_text(json.dumps(saved))
    allocator = PortAllocator(LOW, HIGH)

    given = [allocator.one() for _ in range(20)]

    assert not set(given) & held_ports(saved)
    assert len(set(given)) == len(given)


def test_given_a_half_written_or_foreign_registry_file_then_it_is_passed_over(own_registry: Path) -> None:
    (own_registry / "starting.json").write_text('{"sip_port": 2')
    (own_registry / "odd.json").write_text("[1, 2]")
    (own_registry / "other.json").write_text(json.dumps(saved_bed()))

    assert registered_ports() == held_ports(saved_bed())


def _try_lock(path: str, result: "multiprocessing.Queue[bool]") -> None:
    import fcntl

    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            result.put(True)
        except BlockingIOError:
            result.put(False)


def test_given_one_process_holds_the_registry_lock_then_another_cannot_take_it(own_registry: Path) -> None:
    result: "multiprocessing.Queue[bool]" = multiprocessing.get_context("spawn").Queue()
    ctx = multiprocessing.get_context("spawn")
    with registry_lock():
        held = ctx.Process(target=_try_lock, args=(str(own_registry / "ports.lock"), result))
        held.start()
        held.join(30)
        assert result.get(timeout=10) is False
    free = ctx.Process(target=_try_lock, args=(str(own_registry / "ports.lock"), result))
    free.start()
    free.join(30)
    assert result.get(timeout=10) is True


def test_given_beds_scattered_their_ports_over_the_range_then_a_block_holds_as_few_as_can_be(own_registry: Path) -> None:
    # a bed of an older checkout: a port every 100 over the range, so no block of 250 is clear
    scattered = {"sip_port": 0, "agent_ports": {f"a{i}": LOW + 100 * i for i in range(10)}, "rtp_start": 0, "rtp_ports": 0}
    (own_registry / "old.json").write_text(json.dumps(scattered))
    allocator = PortAllocator(LOW, HIGH)

    base = allocator.block(250)

    assert len(set(range(base, base + 250)) & held_ports(scattered)) == 2  # any 250 ports hold two or three
