"""Test beds are isolated: two run side by side, and `ivr testbed up/down` leaves no process,
directory, port or registry entry behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from ivr.ami.client import AmiClient
from testbed.bed import BedState, TestBed, registry_file
from testbed.calls import Phones, hang_up_all, until
from testbed.sipp import keys
from testbed.ports import port_is_free
from testbed.processes import pid_alive
from testbed.state import held_ports

REPO = Path(__file__).resolve().parents[2]


async def system_name(state: BedState) -> str:
    ami = AmiClient("127.0.0.1", state.ami_port, "testbed", state.testbed_ami_secret)
    await ami.connect()
    try:
        return (await ami.action({"Action": "CoreSettings"}))["SystemName"]
    finally:
        ami.close()


def test_given_a_bed_is_running_when_a_second_starts_then_both_answer_on_their_own_ports(bed: TestBed) -> None:
    assert bed.state
    second = TestBed(REPO / "config", name=f"second-{os.getpid()}")
    st = second.start()
    try:
        # no port of one (its softphones', its RTP range) is the other's, though only some are bound yet
        assert not held_ports(asdict(st)) & held_ports(asdict(bed.state))
        for state in (bed.state, st):
            assert asyncio.run(system_name(state)) == state.name  # each AMI is its own Asterisk
    finally:
        second.stop()
    assert pid_alive(bed.state.asterisk_pid), "stopping one bed must not touch the other"


def ivr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_given_cli_bed_with_engine_when_a_demo_call_is_placed_and_the_bed_brought_down_then_nothing_is_left_behind() -> None:
    name = f"cli-{os.getpid()}"
    up = ivr("testbed", "up", "--name", name, "--engine")
    assert up.returncode == 0, up.stderr
    assert f"test bed {name} is up" in up.stdout
    state = BedState(**json.loads(registry_file(name).read_text()))
    pids = [state.asterisk_pid, state.redis_pid, state.engine_pid]
    assert all(pid_alive(p) for p in pids)
    assert name in ivr("testbed", "status").stdout
    served = Path(state.config_dir)  # a copy: a publish in its console never rewrites the checkout's files
    assert served.is_dir() and not served.resolve().is_relative_to(REPO) and f"config   {served}" in up.stdout

    demo = ivr("demo", "--bed", name)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "demo call OK" in demo.stdout and "answered from queue q-general" in demo.stdout

    down = ivr("testbed", "down", name)

    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert not Path(state.dir).exists()
    assert not served.exists()
    assert not registry_file(name).exists()
    assert all(port_is_free(p) for p in (state.sip_port, state.ami_port, state.agi_port, state.redis_port))


async def test_given_a_call_rang_a_seat_nobody_listened_on_then_the_next_softphone_there_turns_its_stale_invite_away(
    engine: TestBed, phones: Phones, ami: AmiClient
) -> None:
    """Asterisk retransmits an INVITE to an address where nothing listens for 32 s, even after
    that call ended. A seat's softphone started there meanwhile must refuse it and stay free
    for the call its test expects (CI once lost a seat to an earlier test's call this way)."""
    earlier = phones.next_caller()
    rang = ami.wait_for("AgentCalled", lambda e: e.get("CallerIDNum") == earlier)
    sipp, _ = await phones.call("12345", keys("2"), hold_ms=30_000, caller=earlier)
    seat = (await asyncio.wait_for(rang, 30))["Interface"].removeprefix("PJSIP/")
    await hang_up_all(ami)  # the earlier call ends; its INVITE to the dead seat goes on
    assert await sipp.wait(20) == 0, sipp.output()

    caller = phones.next_caller()
    softphones = await phones.seats("general", caller)
    await until(lambda: softphones[seat].turned_away() >= 1, timeout=35)

    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
    call, _ = await phones.call("12345", keys("0"), hold_ms=8000, caller=caller)
    assert (await asyncio.wait_for(connected, 30))["Queue"] == "q-general"
    await hang_up_all(ami)
    assert await call.wait(20) == 0, call.output()
