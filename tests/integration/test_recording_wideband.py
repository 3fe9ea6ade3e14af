"""A wideband leg in a recorded call (issue 21; docs/recording.md, "The recorder").

Audio written to the caller's channel at 16 kHz raises the channel's audiohook rate, for the rest
of the call. The recorder must still write a true 8 kHz file: a 16 kHz chunk written as 8 kHz
halves every frequency and garbles the talk after it. The bed has no wideband phone, so a
16 kHz prompt does it. For the test, the merged-number notice of line 12396 (recorded from the
start) exists only as signed linear at 16 kHz, a tone, in this bed's sounds.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import recording_fixtures
from ivr.ami.client import AmiClient
from recording_fixtures import AGENT_HZ, CITIZEN_HZ, decoded, kept, talk, talk_time
from testbed.bed import TestBed
from testbed.calls import Phones
from testbed.sipp import Key
from testbed.sipp.tones import power
from tickets.store import TicketStore

policy = recording_fixtures.policy  # line 12396 recorded from the start, for the test
PROMPT_HZ = 2800.0  # played at 16 kHz; written as if it were 8 kHz it would show at 1400 Hz
WIDE_RATE, PROMPT_S = 16_000, 3.0


@contextmanager
def wideband_notice(engine: TestBed, old_number: str) -> Iterator[Path]:
    """The notice of ``old_number`` as a 16 kHz tone only (its other formats moved aside)."""
    sounds = engine.dir / "data/sounds/zh"
    found = sorted(sounds.rglob(f"merged_notice__{old_number}.*"))
    assert found, f"no notice for {old_number} under {sounds}"
    aside = [(p, p.with_name(p.name + ".aside")) for p in found]
    for path, moved in aside:
        path.rename(moved)
    wide = found[0].with_suffix(".sln16")
    samples = int(WIDE_RATE * PROMPT_S)
    wide.write_bytes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * PROMPT_HZ * n / WIDE_RATE)))
                              for n in range(samples)))
    try:
        yield wide
    finally:
        wide.unlink(missing_ok=True)
        for path, moved in aside:
            moved.rename(path)


def blocks(samples: list[int], rate: int, start_s: float, end_s: float, size_s: float = 0.5) -> Iterator[list[int]]:
    step = int(rate * size_s)
    for at in range(int(rate * start_s), int(rate * end_s) - step + 1, step):
        yield samples[at:at + step]


async def test_given_a_16_khz_prompt_in_a_recorded_call_then_the_file_stays_true_8_khz_through_the_talk(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    seen: list[list[str]] = []
    with wideband_notice(engine, "12396"):
        ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12396", [Key("1", 5000)], 2000, seen,
                               policy / "incoming")
    stored = await kept(tickets, ticket.linkedid)
    [rec] = stored.recordings
    assert rec.mode == "start"
    rate, (left, right) = decoded(policy / rec.file, tmp_path / "decoded.wav")
    assert rate == 8000

    # the notice, as the caller was sent it: at its own pitch, not at half of it
    notice = [b for b in blocks(right, rate, 0.0, 8.0)
              if power(b, rate, PROMPT_HZ) > 20 * power(b, rate, PROMPT_HZ / 2)
              and power(b, rate, PROMPT_HZ) > 20 * power(b, rate, CITIZEN_HZ)]
    assert len(notice) >= 4, f"{len(notice)} half seconds of the 3 s notice at {PROMPT_HZ} Hz"

    # the talk, after the hook's rate went up: each side at its own pitch, and the file as long as the call
    talked = talk_time(stored)
    start = (datetime.fromisoformat(stored.answered) - datetime.fromisoformat(stored.received)).total_seconds()
    assert rec.seconds > start + talked - 1.0, (rec.seconds, start, talked)
    middle = (start + 0.5, start + talked - 0.5)
    seat_side, citizen_side = list(blocks(right, rate, *middle)), list(blocks(left, rate, *middle))
    assert seat_side and len(seat_side) == len(citizen_side)
    for seat, citizen in zip(seat_side, citizen_side):
        assert power(seat, rate, AGENT_HZ) > 20 * power(seat, rate, AGENT_HZ / 2), "right: the seat, at its pitch"
        assert power(citizen, rate, CITIZEN_HZ) > 20 * power(citizen, rate, CITIZEN_HZ / 2), "left: the citizen"
