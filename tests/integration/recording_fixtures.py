"""What the recording tests on the real bed share (tests/integration/test_recording*.py): this
module's policy switched on for a test, a talk between a citizen and a seat each playing a tone,
the kept file once the engine put it on the ticket, decoded, and who is heard in it.

The session bed records nothing (tests/integration/conftest.py); :func:`policy` switches the
policy on for each test: recorded from answer with the notice, line 12369 never, line 12396 from
the start, suggestions (the IVR's key 3) never, and a disk alarm by use only (1 MB free at least:
the tests' small disk is far below the shipped 2 GB; the engine reads that, so only
:func:`switched_on` with ``reload_engine`` gives it to the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from ivr.ami.client import AmiClient, AmiError
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, only_seat, run_ivr, until
from testbed.sipp.tones import power, read_wav, tone_pcap
from tickets.model import Ticket
from tickets.store import TicketStore

CITIZEN_HZ, AGENT_HZ, CUSTOMS_HZ = 440.0, 1000.0, 1500.0
SEAT = "agent1001"
SESSION_POLICY, TEST_POLICY = "  default: never\n", "  default: answer\n"
NOTICE_OFF, NOTICE_ON = "  notice: false\n", "  notice: true\n"
NO_LINES, LINES = '  lines: {}  ', '  lines: {"12369": never, "12396": start}  '
NO_MATTERS, MATTERS = "  matters: {}  ", "  matters: {suggestion: never}  "
MIN_FREE, TEST_MIN_FREE = "  disk_min_free_mb: 2048", "  disk_min_free_mb: 1   "
NOTICE = "ivr12345/recording_notice"


@contextlib.asynccontextmanager
async def switched_on(engine: TestBed, config_dir: Path, *, reload_engine: bool = False,
                      notice: bool = True, lines: str = LINES) -> AsyncIterator[Path]:
    """Recording on (the recordings directory is yielded), the session's policy after: Asterisk's
    files rendered and reloaded; ``reload_engine``: the engine too (``ivr reload``), for what
    it reads itself (the disk alarm's lines); the dialplan alone decides who is recorded.
    ``notice``: the recording notice before the seat; with it the main flow's worst case is over
    the 15 s budget, which ``ivr reload`` refuses, so a test that reloads the engine goes without.
    ``lines``: the lines' rules (the ``lines:`` line of recording.yaml)."""
    path = config_dir / "recording.yaml"
    text = path.read_text(encoding="utf-8")
    changes = [(SESSION_POLICY, TEST_POLICY), (NO_LINES, lines), (NO_MATTERS, MATTERS),
               (NOTICE_OFF, NOTICE_ON if notice else NOTICE_OFF), (MIN_FREE, TEST_MIN_FREE)]
    changed = text
    for old, new in changes:
        assert old in changed, old
        changed = changed.replace(old, new)
    path.write_text(changed, encoding="utf-8")
    try:
        await _apply(engine, reload_engine)
        assert engine.state
        yield Path(engine.state.recording_dir)
    finally:
        path.write_text(text, encoding="utf-8")
        await _apply(engine, reload_engine)


async def _apply(engine: TestBed, reload_engine: bool) -> None:
    await engine.apply_config()
    if reload_engine:
        assert engine.state
        code, out = await run_ivr(engine.state, "reload")
        assert code == 0, out


@pytest.fixture
async def policy(engine: TestBed, config_dir: Path) -> AsyncIterator[Path]:
    """The recording policy on for the test (the dialplan's: the engine keeps the session's settings)."""
    async with switched_on(engine, config_dir) as directory:
        yield directory


class CallTrace:
    """The caller's notice Playback and AgentConnect, in the order Asterisk reported them; and in
    ``steps``, when a seat was rung, MixMonitor started and stopped, and the survey asked (all on
    the caller's channel: one topic, so in Asterisk's order)."""

    def __init__(self, ami: AmiClient, caller: str):
        self.events: list[dict[str, Any]] = []
        self.steps: list[str] = []
        self.caller = caller
        ami.on("Newexten", self._on)
        ami.on("AgentConnect", self._on)
        for name in ("AgentCalled", "MixMonitorStart", "MixMonitorStop", "UserEvent"):
            ami.on(name, self._step)

    def _step(self, e: Any) -> None:
        if e.get("CallerIDNum") == self.caller and (e.get("Event") != "UserEvent" or e.get("UserEvent") == "IvrSurvey"):
            self.steps.append(str(e.get("UserEvent") if e.get("Event") == "UserEvent" else e.get("Event")))

    def _on(self, e: Any) -> None:
        if e.get("CallerIDNum") != self.caller:
            return
        if e.get("Event") == "AgentConnect" or (e.get("Application") == "Playback" and e.get("AppData") == NOTICE):
            self.events.append(dict(e))

    def kinds(self) -> list[str]:
        return ["connect" if e["Event"] == "AgentConnect" else "notice" for e in self.events]


async def talk(phones: Phones, ami: AmiClient, engine: TestBed, tickets: TicketStore, tmp_path: Path, dialed: str,
               presses: list[Any], talk_ms: int, seen_at_connect: list[list[str]], incoming: Path,
               seat_gone: list[list[str]] | None = None,
               during: Callable[[str], Awaitable[None]] | None = None) -> tuple[Ticket, CallTrace]:
    """A citizen playing CITIZEN_HZ calls ``dialed``; the seat answers playing AGENT_HZ and hangs
    up after ``talk_ms``; returns the closed ticket and the trace. ``seen_at_connect`` gets the
    names of the incoming files of this call while the seat talks; ``seat_gone``, the names once
    a finished (``.done``) file is there after the seat hung up, while the caller is still on the
    line for the survey (or whatever is there then, after 15 s). ``during``: run from the seat's
    answer (given the call's linkedid) and awaited after the seat hung up, before the citizen does."""
    caller = phones.next_caller()
    trace = CallTrace(ami, caller)
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
    citizen_tone = tone_pcap(tmp_path / "citizen.pcap", CITIZEN_HZ, 25)
    agent_tone = tone_pcap(tmp_path / "agent.pcap", AGENT_HZ, talk_ms / 1000 + 2)
    async with only_seat(engine, ami, SEAT):
        seat = await phones.agent(SEAT, caller, mode="hangup", talk_ms=talk_ms, audio=agent_tone)
        # the citizen holds on well past the talk (a loaded bed may take long through the menus);
        # the seat ends the call
        citizen, _ = await phones.call(dialed, presses, hold_ms=talk_ms + 40_000, caller=caller, audio=citizen_tone)
        event = await asyncio.wait_for(connected, 40)
        seen_at_connect.append(sorted(p.name for p in incoming.glob(f"{event['Linkedid']}.*")))
        meanwhile = asyncio.create_task(during(str(event["Linkedid"]))) if during else None
        assert await seat.wait(40) == 0, seat.output()
        if meanwhile is not None:
            await asyncio.wait_for(meanwhile, 40)
        if seat_gone is not None:
            names = lambda: sorted(p.name for p in incoming.glob(f"{event['Linkedid']}.*"))  # noqa: E731
            with contextlib.suppress(AssertionError):
                await until(lambda: any(n.endswith(".done") for n in names()), 15)
            seat_gone.append(names())
        # the talk is over: the citizen hangs up (rather than sitting through the survey until the hold ends)
        with contextlib.suppress(AmiError):
            await ami.action({"Action": "Hangup", "Channel": str(event["Channel"])})
        assert await citizen.wait(40) == 0, citizen.output()
    return await closed_ticket(tickets, caller, timeout=40), trace


async def kept(tickets: TicketStore, linkedid: str) -> Ticket:
    """The ticket once the engine has put the call's recording on it."""
    async def find() -> Ticket | None:
        t = await tickets.get(linkedid)
        return t if t is not None and t.recordings else None
    return await until(find, timeout=40)


def decoded(path: Path, out: Path) -> tuple[int, list[list[int]]]:
    """The kept file as the browser would play it, decoded by opusdec (opus-tools) at 8 kHz."""
    subprocess.run(["opusdec", "--quiet", "--rate", "8000", str(path), str(out)], check=True, timeout=60)
    return read_wav(out)


def talk_time(t: Ticket) -> float:
    """Answer → the seat's hang-up, from the ticket (the events' own times, to the millisecond)."""
    completed = next(e.at for e in t.timeline if e.event == "agent completed")
    return (datetime.fromisoformat(completed) - datetime.fromisoformat(t.answered)).total_seconds()


def dominant(samples: list[int], rate: int, *freqs: float) -> float:
    """Which of ``freqs`` carries the most energy in ``samples``."""
    return max(freqs, key=lambda f: power(samples, rate, f))
