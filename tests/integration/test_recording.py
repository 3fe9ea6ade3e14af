"""Call recording on the real bed (issue 21 items 1, 2, 6; docs/recording.md).

The citizen's sipp plays one tone and the seat's sipp another; Asterisk records the caller's
channel with the rendered policy (MixMonitor, stereo), the engine compresses the file after the
call, names it by the ticket number and puts its length, size and SHA-256 on the ticket. The
tests read the kept Ogg Opus back (opusdec) and tell the parties apart by frequency.

The session bed records nothing (tests/integration/conftest.py); :func:`policy`
(tests/integration/recording_fixtures.py) switches the policy on for each test. The disk filling
up is tests/integration/test_recording_disk.py.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from pathlib import Path

import pytest

import recording_fixtures
from ivr.ami.client import AmiClient
from testbed.bed import TestBed
from testbed.calls import Phones, callback_event, closed_ticket, only_seat, pause_all, run_ivr, until
from testbed.sipp import Key, keys
from testbed.sipp.tones import power, tone_pcap
from recording.rules import RAW_BYTES_PER_SECOND
from recording_fixtures import (AGENT_HZ, CITIZEN_HZ, CUSTOMS_HZ, NOTICE, SEAT, decoded, dominant, kept, switched_on,
                                talk, talk_time)
from tickets.store import TicketStore

policy = recording_fixtures.policy  # this module's policy, switched on for each test (test_recording_playback.py's too)
POLICE_HZ = 2000.0
NOTICE_MS = 4000  # the notice (3.4 s) and a margin: a called-back citizen hears it before the talk
# the notice is off by default and on for the line 12345 alone: a callback must follow the line first dialed
LINE_NOTICE = '  lines: {"12369": never, "12396": start, "12345": {notice: true}}  '


@pytest.fixture
def caller(phones: Phones) -> str:
    """A fresh citizen number: it names the test's call in AMI events and on its ticket."""
    return phones.next_caller()


async def test_given_a_recorded_line_when_the_citizen_and_the_seat_talk_then_a_stereo_file_of_the_talk_is_on_the_ticket(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    seen, seat_gone = list[list[str]](), list[list[str]]()
    ticket, trace = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 4000, seen,
                               policy / "incoming", seat_gone=seat_gone)

    assert trace.kinds() == ["notice", "connect"], "the notice is played, once, before the seat is connected"
    assert seen == [[f"{ticket.linkedid}.answer.raw"]], "recording from answer: MixMonitor runs on the caller's channel"
    assert seat_gone == [[f"{ticket.linkedid}.answer.done"]], "it ends as the seat hangs up, before the survey"
    # issue 21's CPU: nothing hooked while the caller waits in the queue, nor through the survey
    assert trace.steps == ["AgentCalled", "MixMonitorStart", "MixMonitorStop", "IvrSurvey"], trace.steps
    stored = await kept(tickets, ticket.linkedid)
    [rec] = stored.recordings
    day = datetime.fromisoformat(stored.received)
    assert rec.file == f"{day:%Y/%m/%d}/{stored.number}.opus" and rec.mode == "answer"
    path = policy / rec.file
    data = path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (rec.size, rec.sha256)
    assert not list((policy / "incoming").glob(f"{ticket.linkedid}.*")), "the raw file is gone once kept"

    rate, channels = decoded(path, tmp_path / "decoded.wav")
    assert len(channels) == 2
    left, right = channels
    talked = talk_time(stored)
    assert abs(len(left) / rate - talked) <= 1.0, (len(left) / rate, talked)
    assert abs(rec.seconds - talked) <= 1.0, (rec.seconds, talked)
    middle = slice(rate // 2, len(left) - rate // 2)  # the talk, without its first and last half second
    assert power(left[middle], rate, CITIZEN_HZ) > 20 * power(left[middle], rate, AGENT_HZ), "left: the citizen"
    assert power(right[middle], rate, AGENT_HZ) > 20 * power(right[middle], rate, CITIZEN_HZ), "right: the seat"


async def test_given_a_line_marked_never_when_a_seat_answers_then_no_file_and_no_notice(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    seen: list[list[str]] = []
    ticket, trace = await talk(phones, ami, engine, tickets, tmp_path, "12369", [], 1500, seen, policy / "incoming")

    assert ticket.answered and ticket.line == "12369"
    assert trace.kinds() == ["connect"], "no notice where nothing is recorded"
    assert seen == [[]], "no MixMonitor on the caller's channel"
    assert not [p for p in policy.rglob("*") if ticket.linkedid in p.name or (ticket.number and ticket.number in p.name)]
    assert (await tickets.get(ticket.linkedid)).recordings == []  # type: ignore[union-attr]


async def test_given_a_line_recorded_from_the_start_then_the_ivr_is_in_its_file_unless_the_matter_must_not_be_recorded(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    incoming, seen = policy / "incoming", list[list[str]]()
    # a consultation (key 1, during the menu after the merged number's notice): the whole call
    ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12396", [Key("1", 5000)], 1500, seen, incoming)
    assert seen == [[f"{ticket.linkedid}.start.raw"]]
    [rec] = (stored := await kept(tickets, ticket.linkedid)).recordings
    assert rec.mode == "start" and rec.seconds > talk_time(stored) + 4, (rec.seconds, talk_time(stored))

    # a suggestion (key 3): its matter must not be recorded; what was recorded since the answer is discarded
    ticket, trace = await talk(phones, ami, engine, tickets, tmp_path, "12396", [Key("3", 5000)], 1500, seen, incoming)
    assert ticket.request_type == "suggestion" and ticket.answered
    assert trace.kinds() == ["connect"], "no notice where nothing is recorded"
    # begun at the answer, ended as the caller joined the queue, before any seat was rung
    assert trace.steps[:3] == ["MixMonitorStart", "MixMonitorStop", "AgentCalled"], trace.steps
    # by the seat's answer the discard mark is there, unless the engine already dropped both files
    mark, files = f"{ticket.linkedid}.start.discard", {f"{ticket.linkedid}.start.{s}" for s in ("raw", "done")}
    assert not seen[1] or (mark in seen[1] and set(seen[1]) <= files | {mark}), seen
    await until(lambda: not list(incoming.glob(f"{ticket.linkedid}.*")), 20)  # the engine deleted both
    assert not list(policy.rglob(f"{ticket.number}*"))
    assert (await tickets.get(ticket.linkedid)).recordings == []  # type: ignore[union-attr]


async def test_given_a_kept_recording_when_its_file_is_altered_then_verify_fails_and_retention_deletes_it_saying_so(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    assert engine.state
    seen: list[list[str]] = []
    ticket, _ = await talk(phones, ami, engine, tickets, tmp_path, "12345", keys("1", first_ms=1500), 1500, seen,
                           policy / "incoming")
    stored = await kept(tickets, ticket.linkedid)
    path = policy / stored.recordings[0].file

    code, out = await run_ivr(engine.state, "recordings", "show", stored.number)
    assert code == 0 and str(path) in out and stored.recordings[0].sha256 in out, out
    code, out = await run_ivr(engine.state, "recordings", "list")
    assert code == 0 and f"{stored.number}  " in out and stored.recordings[0].file in out, out
    code, out = await run_ivr(engine.state, "recordings", "verify", stored.number)
    assert code == 0 and f"{stored.number}" in out and " ok" in out, out
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of the audio
    path.write_bytes(bytes(data))
    code, out = await run_ivr(engine.state, "recordings", "verify", stored.number)
    assert code == 1 and "ALTERED" in out, out
    path.unlink()
    code, out = await run_ivr(engine.state, "recordings", "verify", stored.number)
    assert code == 1 and "MISSING" in out, out

    path.write_bytes(bytes(data))  # the altered file back: retention deletes whatever lies there
    # a retention of a few seconds: this call's recording has expired by now
    code, out = await run_ivr(engine.state, "recordings", "purge", env={"IVR_RECORDING_RETENTION_DAYS": "0.00002"})
    assert code == 0 and stored.number in out, out
    assert not path.exists()
    after = await tickets.get(ticket.linkedid)
    assert after is not None
    [rec] = after.recordings
    assert rec.deleted and rec.deleted_why == "retention"
    assert any(e.event == "recording deleted" for e in after.timeline)
    code, out = await run_ivr(engine.state, "recordings", "verify", stored.number)
    assert code == 0 and "deleted" in out, out


async def test_given_a_recorded_call_when_the_engine_transfers_it_to_customs_then_the_talk_with_both_is_one_file(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path,
) -> None:
    assert engine.state
    caller = phones.next_caller()
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
    blind = ami.wait_for("BlindTransfer", lambda e: e.get("Extension") == "12360")
    async with only_seat(engine, ami, SEAT):
        customs = await phones.subcenter("customs", caller, audio=tone_pcap(tmp_path / "customs.pcap", CUSTOMS_HZ, 30))
        await phones.agent(SEAT, caller, audio=tone_pcap(tmp_path / "agent.pcap", AGENT_HZ, 30))  # answers, speaks, waits
        await phones.call("12345", [Key("0", 1500)], hold_ms=14_000, caller=caller,
                          audio=tone_pcap(tmp_path / "citizen.pcap", CITIZEN_HZ, 30))
        linkedid = str((await asyncio.wait_for(connected, 40))["Linkedid"])
        number = (await until(lambda: tickets.get(linkedid), 20)).number
        talked = policy / "incoming" / f"{linkedid}.answer.raw"  # the seat has spoken 2 s when it holds that much
        await until(lambda: talked.exists() and talked.stat().st_size >= 2 * RAW_BYTES_PER_SECOND, 20)
        code, out = await run_ivr(engine.state, "transfer", number, "12360")
        assert code == 0, out
        assert (await asyncio.wait_for(blind, 20))["Result"] == "Success"
        assert await customs.wait(40) == 0, customs.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "transferred"
    stored = await kept(tickets, ticket.linkedid)
    [rec] = stored.recordings  # one file: the recording is the caller's channel's
    rate, (left, right) = decoded(policy / rec.file, tmp_path / "decoded.wav")
    first, last = slice(rate // 2, rate + rate // 2), slice(len(left) - 3 * rate // 2, len(left) - rate // 2)
    assert dominant(left[first], rate, CITIZEN_HZ, AGENT_HZ, CUSTOMS_HZ) == CITIZEN_HZ
    assert dominant(left[last], rate, CITIZEN_HZ, AGENT_HZ, CUSTOMS_HZ) == CITIZEN_HZ
    assert dominant(right[first], rate, CITIZEN_HZ, AGENT_HZ, CUSTOMS_HZ) == AGENT_HZ, "the seat, before the transfer"
    assert dominant(right[last], rate, CITIZEN_HZ, AGENT_HZ, CUSTOMS_HZ) == CUSTOMS_HZ, "customs, after it"


async def test_given_a_recorded_call_when_the_seat_brings_110_into_a_three_party_bridge_then_one_file_covers_the_whole_talk(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path, tmp_path: Path, caller: str,
) -> None:
    assert engine.state
    connected = ami.wait_for("AgentConnect", lambda e: e.get("CallerIDNum") == caller)
    async with only_seat(engine, ami, SEAT):
        police = await phones.subcenter("emergency", caller, audio=tone_pcap(tmp_path / "police.pcap", POLICE_HZ, 40))
        await phones.agent(SEAT, caller, audio=tone_pcap(tmp_path / "agent.pcap", AGENT_HZ, 40))  # answers, speaks, waits
        citizen, _ = await phones.call("12345", [Key("0", 1500)], hold_ms=40_000, caller=caller,
                                       audio=tone_pcap(tmp_path / "citizen.pcap", CITIZEN_HZ, 40))
        event = await asyncio.wait_for(connected, 40)
        linkedid = str(event["Linkedid"])
        number = (await until(lambda: tickets.get(linkedid), 20)).number
        raw = policy / "incoming" / f"{linkedid}.answer.raw"
        await until(lambda: raw.exists() and raw.stat().st_size >= 2 * RAW_BYTES_PER_SECOND, 20)  # 2 s with the seat
        police_in = ami.wait_for("ConfbridgeJoin", lambda e: e.get("Conference") == f"ivr-{linkedid}"
                                 and str(e.get("Channel", "")).startswith("PJSIP/emergency"))
        code, out = await run_ivr(engine.state, "transfer", number, "110", "--three-party")
        assert code == 0, out
        await asyncio.wait_for(police_in, 30)
        joined = raw.stat().st_size  # then 3 s of the three of them, and the citizen hangs up
        await until(lambda: raw.stat().st_size >= joined + 3 * RAW_BYTES_PER_SECOND, 20)
        await ami.action({"Action": "Hangup", "Channel": str(event["Channel"])})
        assert await citizen.wait(20) == 0, citizen.output()
        assert await police.wait(40) == 0, police.output()
        ticket = await closed_ticket(tickets, caller, timeout=40)
    assert ticket.disposition == "emergency_linked"
    stored = await kept(tickets, ticket.linkedid)
    [rec] = stored.recordings  # one file: the caller's channel records, in the queue's bridge and the ConfBridge
    talked = (datetime.fromisoformat(stored.ended) - datetime.fromisoformat(stored.answered)).total_seconds()
    assert abs(rec.seconds - talked) <= 1.0, (rec.seconds, talked)
    rate, (left, right) = decoded(policy / rec.file, tmp_path / "decoded.wav")
    assert abs(len(left) / rate - talked) <= 1.0, (len(left) / rate, talked)
    first, last = slice(rate // 2, rate + rate // 2), slice(len(left) - 5 * rate // 2, len(left) - rate // 2)
    assert dominant(left[first], rate, CITIZEN_HZ, AGENT_HZ, POLICE_HZ) == CITIZEN_HZ
    assert dominant(left[last], rate, CITIZEN_HZ, AGENT_HZ, POLICE_HZ) == CITIZEN_HZ, "left: still the citizen alone"
    assert dominant(right[first], rate, CITIZEN_HZ, AGENT_HZ, POLICE_HZ) == AGENT_HZ, "the seat, before 110 joins"
    heard = {hz: power(right[last], rate, hz) for hz in (CITIZEN_HZ, AGENT_HZ, POLICE_HZ)}
    assert heard[POLICE_HZ] > 20 * heard[CITIZEN_HZ] and heard[AGENT_HZ] > 20 * heard[CITIZEN_HZ], heard
    assert heard[POLICE_HZ] > heard[AGENT_HZ] / 10, f"right: 110 is heard with the seat in the bridge {heard}"


async def test_given_a_callback_when_the_seat_and_the_citizen_talk_then_their_conversation_is_on_the_called_back_ticket(
    engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, config_dir: Path, tmp_path: Path,
) -> None:
    async with switched_on(engine, config_dir, notice=False, lines=LINE_NOTICE) as policy:
        await _callback_recorded(engine, phones, ami, tickets, policy, tmp_path)


async def _callback_recorded(engine: TestBed, phones: Phones, ami: AmiClient, tickets: TicketStore, policy: Path,
                             tmp_path: Path) -> None:
    """The line's notice (the default has none, nor has the queue) reaches the citizen called back."""
    await pause_all(engine, ami, True)
    try:
        caller = phones.next_caller()
        requested = ami.wait_for("UserEvent", lambda e: callback_event("requested")(e) and e.get("CallerIDNum") == caller)
        # 0: a human; after the notice (3.4 s) and the callback offer's 2 s in the queue (the session's
        # queues.yaml), 1: hang up, keep the place
        sipp, _ = await phones.call("12345", [Key("0", 1500), Key("1", 8000)], hold_ms=20_000, caller=caller)
        await asyncio.wait_for(requested, 30)
        assert await sipp.wait(20) == 0, sipp.output()
        linkedid = (await closed_ticket(tickets, caller, timeout=20)).linkedid

        steps: list[tuple[str, str]] = []  # ("notice" | "bridged", channel), in Asterisk's order
        ami.on("Newexten", lambda e: steps.append(("notice", str(e["Channel"])))
               if e.get("Application") == "Playback" and e.get("AppData") == NOTICE else None)
        ami.on("BridgeEnter", lambda e: steps.append(("bridged", str(e["Channel"]))))
        # the citizen answers, hears the notice (3.4 s), then talks with the seat for 3 s and hangs up
        phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=3000 + NOTICE_MS,
                                           audio=tone_pcap(tmp_path / "citizen.pcap", CITIZEN_HZ, 15))
        seat = await phones.agent(SEAT, caller, audio=tone_pcap(tmp_path / "agent.pcap", AGENT_HZ, 30))
        result = ami.wait_for("UserEvent", callback_event("result", Of=linkedid))
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{SEAT}", "Paused": "false"})
        assert (await asyncio.wait_for(result, 40))["DialStatus"] == "ANSWER"
        assert await phone.wait(20) == 0, phone.output()
        assert await seat.wait(20) == 0, seat.output()
    finally:
        await pause_all(engine, ami, False)

    citizen = [kind for kind, channel in steps if channel.startswith("PJSIP/pstn-")]
    assert citizen[:2] == ["notice", "bridged"], f"the citizen called back hears the notice before the seat: {steps}"
    assert citizen.count("notice") == 1 and not [c for k, c in steps if k == "notice" and c.startswith("Local/")]
    stored = await kept(tickets, linkedid)  # the wait in the queue had no talk: only the callback's
    [rec] = stored.recordings
    assert rec.file.endswith(f"/{stored.number}.opus") and rec.source.startswith(f"{linkedid}-cb-")
    rate, (left, right) = decoded(policy / rec.file, tmp_path / "decoded.wav")
    last = slice(len(left) - 3 * rate // 2, len(left) - rate // 2)  # while the citizen speaks
    assert dominant(left[last], rate, CITIZEN_HZ, AGENT_HZ) == CITIZEN_HZ, "left: the citizen called back"
    assert dominant(right[last], rate, CITIZEN_HZ, AGENT_HZ) == AGENT_HZ, "right: the seat"
