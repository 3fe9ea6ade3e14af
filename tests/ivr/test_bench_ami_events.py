"""The AMI-event benchmark's machinery at tiny size (benchmarks/bench_ami_events.py): the stream
it plays, the ticket check that prints FAIL, and one whole run of both clients against the fake
AMI and a real redis-server. Nothing here is timed."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from panoramisk.message import Message

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_ami_events as bench  # noqa: E402
from ami_feed import KINDS, Stream, build_stream  # noqa: E402

from ivr.config import load_config  # noqa: E402
from ivr.core.calendar import load_calendar  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from tickets.deadline import handling_deadline  # noqa: E402
from tracking.tracker import CallTracker, Directory  # noqa: E402


def parsed(stream: Stream) -> list[dict[str, str]]:
    """The stream's bytes as the bare client reads them (panoramisk's parser)."""
    out = []
    for data in stream.wire(1_796_160_000.0):
        message = Message.from_line(data.decode("utf-8").strip())
        assert message is not None
        out.append(dict(message))
    return out


def test_given_copies_of_the_recorded_calls_then_each_has_its_own_ids_and_caller_and_hangs_up_every_channel() -> None:
    stream = build_stream(8, calls_per_s=4)
    events = parsed(stream)
    assert len({c.linkedid for c in stream.calls}) == 8 and len({c.caller for c in stream.calls}) == 8
    assert [c.kind for c in stream.calls] == list(KINDS) * 2
    assert not any("capture" in v for e in events for v in e.values())  # nothing of the recording's names
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    up: dict[str, set[str]] = defaultdict(set)
    gone: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["Event"] == "Newchannel":
            up[e["Linkedid"]].add(e["Uniqueid"])
        elif e["Event"] == "Hangup":
            gone[e["Linkedid"]].add(e["Uniqueid"])
    assert set(up) == {c.linkedid for c in stream.calls} and up == gone


def test_given_the_stream_through_the_tracker_then_every_copy_closes_with_its_recordings_disposition() -> None:
    settings = load_config(REPO / "config").settings
    calendar = load_calendar()
    tracker = CallTracker(Directory.from_settings(settings),
                          lambda t: handling_deadline(datetime.fromisoformat(t.received), t.request_type,
                                                      settings.tickets, calendar))
    stream = build_stream(8, calls_per_s=4)
    for call in stream.calls:
        assert tracker.ivr_record(call.record, 0.0) == []  # kept until the call's first event
    closed = {c.ticket.linkedid: c.ticket.disposition for e in parsed(stream) for c in tracker.handle(e)
              if c.phase == "closed"}
    assert closed == {c.linkedid: KINDS[c.kind] for c in stream.calls}
    assert tracker.open_calls() == []


async def test_given_a_redis_without_the_tickets_then_the_check_fails_and_names_the_calls(tmp_path: Path) -> None:
    redis = bench.BenchRedis(tmp_path, PortAllocator().one())
    try:
        check = await redis.check(build_stream(4, calls_per_s=4), tmp_path / "spool")
    finally:
        await redis.close()
    assert not check.ok and check.complete == 0 and len(check.wrong) == 4
    assert check.by_disposition == {"": 4}


@pytest.mark.timeout(90)
async def test_given_a_tiny_run_then_both_clients_read_every_event_and_redis_holds_one_ticket_per_call() -> None:
    args = bench.parse_args(["--calls", "8", "--burst-calls", "8", "--batches", "1", "--speed", "20", "--no-warmup"])
    result = await bench.run(args)
    for name in ("paced", "burst"):
        load = result["loads"][name]
        expected = len(build_stream(8, args.calls_per_s).events)
        assert load["events_per_batch"] == expected
        for variant in bench.VARIANTS:
            [batch] = load["batches"][variant]
            assert batch["events"] == expected and batch["cpu_ns"] > 0
        assert load["tickets_ok"] and load["tickets_complete"] == load["calls"] == 8
        assert load["ticket_writes"] == 24  # two of each recorded call: opened, closed; 3 of 4 a queue visit; the rated one its survey
        # every group commit carries at least one write, and is one of the engine's round trips
        assert 1 <= load["evalsha"] == load["group_commits"] <= load["ticket_writes"]
        assert load["redis_round_trips"] >= load["evalsha"]
    assert {r["result"] for r in result["targets"] if r["measure"].startswith("tickets")} == {"OK"}
