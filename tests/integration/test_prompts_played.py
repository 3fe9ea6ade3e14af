"""A citizen calling 12345 hears the built Mandarin greeting (issue 4): Asterisk plays
`ivr12345/welcome_12345` from its `zh` sounds, in full, on a channel whose language is zh.

AMI's AGIExecEnd says a command ran, not how much it played; the sample position Asterisk
reached (`endpos` of the STREAM FILE reply) is read from Asterisk's own AGI debug trace in
its log, switched on through AMI for this test only.
"""

from __future__ import annotations

import asyncio
import json
import re
import wave
from pathlib import Path
from typing import AsyncIterator

import pytest

from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import AgiTrace, Phones, hang_up_all, until

REPO = Path(__file__).resolve().parents[2]
GREETING = "welcome_12345"
RATE = 8000  # what the prompt build makes, and what endpos counts in
TOLERANCE = 0.25  # s: played length against the manifest, with no interruption


@pytest.fixture
async def agi_debug(ami: AmiClient) -> AsyncIterator[None]:
    await ami.command("agi set debug on")
    try:
        yield
    finally:
        await ami.command("agi set debug off")


def manifest_duration(prompt_id: str) -> float:
    return float(json.loads((REPO / "prompts" / "manifest.json").read_text())["prompts"][prompt_id]["duration"])


async def stream_file_endpos(log: Path, channel: str, sound: str) -> int:
    """``endpos`` of the reply to ``STREAM FILE <sound>`` on ``channel``, from the AGI trace."""
    asked = f"<{channel}>AGI Rx << STREAM FILE \"{sound}\""
    reply = re.compile(rf"<{re.escape(channel)}>AGI Tx >> 200 result=(-?\d+) endpos=(\d+)")

    async def find() -> int | None:
        lines = log.read_text(errors="replace").splitlines()
        start = next((i for i, line in enumerate(lines) if asked in line), None)
        if start is None:
            return None
        for line in lines[start + 1:]:
            if m := reply.search(line):
                assert m[1] == "0", f"STREAM FILE was interrupted or failed: {line}"
                return int(m[2])
        return None

    return await until(find, timeout=10)


async def test_given_a_citizen_calls_12345_then_the_mandarin_greeting_is_played_in_full_from_the_zh_sounds(
    engine: TestBed, phones: Phones, ami: AmiClient, agi_debug: None
) -> None:
    # the built prompt is where this Asterisk looks for zh sounds, and nowhere else
    settings = await ami.command("core show settings")
    assert re.search(rf"Data directory:\s+{re.escape(engine.inner('data'))}\s*$", settings, re.M), settings
    wav = engine.dir / "data" / "sounds" / "zh" / "ivr12345" / f"{GREETING}.wav"
    assert wav.is_file()
    assert not (engine.dir / "data" / "sounds" / "en" / "ivr12345").exists()  # no English fallback to play
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        file_seconds = w.getnframes() / RATE
    expected = manifest_duration(GREETING)
    assert abs(file_seconds - expected) < 0.05

    caller = phones.next_caller()
    trace = AgiTrace(ami, caller)
    command = f'STREAM FILE "ivr12345/{GREETING}"'
    started = ami.wait_for("AGIExecStart", lambda e: e.get("CallerIDNum") == caller and e.get("Command", "").startswith(command))
    ended = ami.wait_for("AGIExecEnd", lambda e: e.get("CallerIDNum") == caller and e.get("Command", "").startswith(command))
    status = ami.wait_for("VarSet", lambda e: e.get("CallerIDNum") == caller and e.get("Variable") == "PLAYBACKSTATUS")

    sipp, _ = await phones.call("12345", [], hold_ms=60_000, caller=caller)  # no key: nothing interrupts

    start = await asyncio.wait_for(started, 20)
    assert start["Language"] == "zh"
    end = await asyncio.wait_for(ended, 20)
    assert end["ResultCode"] == "200" and end["Result"] == "Success"
    assert (await asyncio.wait_for(status, 5))["Value"] == "SUCCESS"
    greeting = trace.commands[0]
    assert greeting.command.startswith(command) and greeting.ended is not None
    assert abs((greeting.ended - greeting.started) - expected) < TOLERANCE  # it took as long as the audio

    endpos = await stream_file_endpos(engine.dir / "log" / "messages.log", start["Channel"], f"ivr12345/{GREETING}")
    assert endpos > 0
    assert abs(endpos / RATE - expected) < TOLERANCE

    await hang_up_all(ami)
    assert await sipp.wait(20) == 0, sipp.output()
