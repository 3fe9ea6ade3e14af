"""The engine's recording worker on a real Redis and the real encoder (libopus): a finished raw file becomes
the ticket's Ogg Opus with its length, size and SHA-256; a discarded, empty or unclaimed one is
not; retention deletes an expired file and says so on the ticket; verify tells an altered file."""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, cast

import pytest

from recording.rules import RecordingSettings
from quality.model import recorded
from recording.grants import check
from recording.store import finished, state
from recording.worker import RecordingWorker, retention
from tickets.model import Ticket
from tickets.store import TicketStore

CALLER_KEY = b"test-caller-key-not-a-secret"


@pytest.fixture
async def tickets(redis_url: str, tmp_path: Path) -> AsyncIterator[TicketStore]:
    s = TicketStore(redis_url, tmp_path / "spool", name="server-1", retention_days=365, timeout=1.0, caller_key=CALLER_KEY)
    yield s
    await s.close()


@pytest.fixture
def settings(tmp_path: Path) -> RecordingSettings:
    s = RecordingSettings(dir=str(tmp_path / "recordings"))
    (tmp_path / "recordings" / "incoming").mkdir(parents=True)
    return s


def raw(path: Path, seconds: float) -> Path:
    """What MixMonitor's D writes: 8 kHz s16le, left 440 Hz, right 1000 Hz."""
    n = int(seconds * 8000)
    path.write_bytes(b"".join(struct.pack("<hh", int(6000 * math.sin(2 * math.pi * 440 * i / 8000)),
                                          int(6000 * math.sin(2 * math.pi * 1000 * i / 8000))) for i in range(n)))
    return path


async def closed(tickets: TicketStore, linkedid: str, received: datetime | None = None, answered: bool = False,
                 talk_seconds: float | None = None) -> Ticket:
    t = Ticket(linkedid=linkedid, line="12345", caller="13900000001",
               received=(received or datetime.now().astimezone()).isoformat(timespec="milliseconds"))
    await tickets.write(t, "opened")
    t.disposition = "answered"
    t.answered = t.received if answered else ""
    t.talk_seconds = talk_seconds
    await tickets.write(t, "closed")
    await tickets.drain()
    stored = await tickets.get(linkedid)
    assert stored is not None and stored.number
    return stored


async def test_given_a_finished_recording_of_a_closed_call_then_it_is_kept_on_the_ticket(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    ticket = await closed(tickets, "node-1733529600.7")
    incoming = Path(settings.dir) / "incoming"
    raw(incoming / "node-1733529600.7.answer.done", 2.5)
    worker = RecordingWorker(lambda: settings, tickets)

    assert await worker.sweep() == 0
    await tickets.drain()
    stored = await tickets.get(ticket.linkedid)
    assert stored is not None
    [rec] = stored.recordings
    day = datetime.fromisoformat(ticket.received)
    assert rec.file == f"{day:%Y/%m/%d}/{ticket.number}.opus" and rec.mode == "answer" and rec.seconds == 2.5
    data = (Path(settings.dir) / rec.file).read_bytes()
    assert data[:4] == b"OggS" and b"OpusHead" in data[:64]
    assert (rec.size, rec.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert list(incoming.iterdir()) == []
    assert state(rec, Path(settings.dir)) == "ok"
    assert stored.timeline[-1].event == "recording stored"

    raw(incoming / "node-1733529600.7.answer.done", 2.5)  # the worker died before it deleted the raw file
    await worker.sweep()
    await tickets.drain()
    again = await tickets.get(ticket.linkedid)
    assert again is not None and len(again.recordings) == 1 and list(incoming.iterdir()) == []


async def test_given_a_callbacks_recording_then_it_goes_onto_the_ticket_called_back_as_a_second_file(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    ticket = await closed(tickets, "node-1.1")
    incoming = Path(settings.dir) / "incoming"
    raw(incoming / "node-1.1.answer.done", 1.0)
    worker = RecordingWorker(lambda: settings, tickets)
    await worker.sweep()
    await tickets.drain()
    raw(incoming / "node-1.1-cb-node-2.5.answer.done", 1.0)
    await worker.sweep()
    await tickets.drain()
    stored = await tickets.get(ticket.linkedid)
    assert stored is not None
    assert [r.file.rsplit("/", 1)[1] for r in stored.recordings] == [f"{ticket.number}.opus", f"{ticket.number}-2.opus"]


async def test_given_a_call_still_open_or_a_discarded_or_empty_recording_then_nothing_reaches_a_ticket(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    incoming = Path(settings.dir) / "incoming"
    opened = Ticket(linkedid="node-3.1", line="12345", caller="13900000001",
                    received=datetime.now().astimezone().isoformat(timespec="milliseconds"))
    await tickets.write(opened, "opened")
    await closed(tickets, "node-4.1")
    await closed(tickets, "node-5.1")
    raw(incoming / "node-3.1.answer.done", 1.0)  # its call is not closed yet: it waits
    raw(incoming / "node-4.1.start.done", 1.0)
    (incoming / "node-4.1.start.discard").write_text("never")  # the matter said never after the start
    (incoming / "node-5.1.answer.done").write_bytes(b"")  # the caller never reached a seat
    raw(incoming / "x;y.answer.done", 1.0)  # not a linkedid: left alone

    assert await RecordingWorker(lambda: settings, tickets).sweep() == 1
    await tickets.drain()
    for linkedid in ("node-3.1", "node-4.1", "node-5.1"):
        t = await tickets.get(linkedid)
        assert t is not None and t.recordings == []
    assert sorted(p.name for p in incoming.iterdir()) == ["node-3.1.answer.done", "x;y.answer.done"]
    assert [f.call_id for f in finished(settings)] == ["node-3.1"]
    assert not list(Path(settings.dir).glob("20*"))


async def test_given_a_file_that_waits_through_the_survey_then_its_calls_close_sweeps_it_and_only_it(
    tickets: TicketStore, settings: RecordingSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recording from answer ends as the seat hangs up; the caller still rates the call. The
    worker does not look at it again every few seconds: the close of that call wakes it."""
    monkeypatch.setattr("recording.worker.SWEEP", 3600.0)  # after the first sweep, only a close sweeps
    incoming = Path(settings.dir) / "incoming"
    for linkedid in ("node-9.1", "node-9.2", "node-9.3"):
        await tickets.write(Ticket(linkedid=linkedid, line="12345", caller="13900000001",
                                   received=datetime.now().astimezone().isoformat(timespec="milliseconds")), "opened")
        raw(incoming / f"{linkedid}.answer.done", 1.0)
    await tickets.drain()
    other = RecordingWorker(lambda: settings, tickets)
    assert await other.sweep(only={"node-9.2"}) == 1 and other.waiting_calls == {"node-9.2"}, "only the call named"
    worker = RecordingWorker(lambda: settings, tickets)
    task = asyncio.create_task(worker.run())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while worker.waiting_calls != {"node-9.1", "node-9.2", "node-9.3"}:  # the first (full) sweep found both open
            assert asyncio.get_running_loop().time() < deadline, "the first sweep did not look at every file"
            await asyncio.sleep(0.01)
        for linkedid in ("node-9.1", "node-9.2", "node-9.3"):
            await closed(tickets, linkedid)
        worker.poke("node-9.2")

        async def stored(linkedid: str) -> bool:
            t = await tickets.get(linkedid)
            return t is not None and bool(t.recordings)
        deadline = asyncio.get_running_loop().time() + 20
        while not await stored("node-9.2"):
            assert asyncio.get_running_loop().time() < deadline, "the close did not sweep the call's file"
            await asyncio.sleep(0.1)
        assert not await stored("node-9.1"), "a call whose close was not told waits for the next full sweep"
        assert sorted(p.name for p in incoming.iterdir()) == ["node-9.1.answer.done", "node-9.3.answer.done"]
    finally:
        task.cancel()
    assert await worker.sweep() == 0 and not await stored("node-9.1"), "found open a moment ago: left alone"
    await worker.sweep(closed={"node-9.1"})  # a full sweep was due as the close was told
    await tickets.drain()
    assert await stored("node-9.1") and not await stored("node-9.3")
    monkeypatch.setattr("recording.worker.RECHECK", 0.0)  # a minute later (a close no engine here told)
    await worker.sweep()
    await tickets.drain()
    assert await stored("node-9.3") and list(incoming.iterdir()) == []


async def test_given_a_talked_call_whose_recording_holds_no_audio_then_its_ticket_says_the_recording_failed(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    incoming = Path(settings.dir) / "incoming"
    talked = await closed(tickets, "node-6.1", answered=True, talk_seconds=12.0)
    (incoming / "node-6.1.answer.done").write_bytes(b"")  # MixMonitor could write nothing (the disk was full)
    brief = await closed(tickets, "node-7.1", answered=True, talk_seconds=0.4)
    (incoming / "node-7.1.answer.done").write_bytes(b"")  # bridged for less than a second: nothing to miss
    worker = RecordingWorker(lambda: settings, tickets)

    assert await worker.sweep() == 0
    await tickets.drain()
    [rec] = (stored := cast(Ticket, await tickets.get(talked.linkedid))).recordings
    assert rec.file == "" and rec.mode == "answer" and rec.failed == "no-audio"  # the disk had room: not "disk-full"
    assert state(rec, Path(settings.dir)) == "failed", "never played, never counted as a kept file"
    assert check(rec, Path(settings.dir)).state == "failed" and not recorded(stored), "nothing to play or inspect"
    assert (stored.timeline[-1].event, stored.timeline[-1].detail) == ("recording failed",
                                                                       "no audio written (see Asterisk's log)")
    assert (await tickets.get(brief.linkedid)).recordings == []  # type: ignore[union-attr]
    assert list(incoming.iterdir()) == []
    raw(incoming / "node-6.1-cb-node-8.2.answer.done", 1.0)  # the call's callback, once space was back: -2
    await worker.sweep()
    await tickets.drain()
    again = await tickets.get(talked.linkedid)
    assert again is not None and [r.file.rsplit("/", 1)[-1] for r in again.recordings] == ["", f"{talked.number}-2.opus"]

    later = datetime.now().astimezone() + timedelta(days=settings.retention_days + 1)
    await retention(settings, tickets, later)
    await tickets.drain()
    after = await tickets.get(talked.linkedid)
    assert after is not None and [bool(r.deleted) for r in after.recordings] == [False, True], "the failure stays said"


async def test_given_an_expired_recording_then_retention_deletes_its_file_and_the_ticket_says_so(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    old = await closed(tickets, "node-6.1", datetime.now().astimezone() - timedelta(days=181))
    young = await closed(tickets, "node-7.1")
    incoming = Path(settings.dir) / "incoming"
    raw(incoming / "node-6.1.answer.done", 1.0)
    raw(incoming / "node-7.1.answer.done", 1.0)
    await RecordingWorker(lambda: settings, tickets).sweep()
    await tickets.drain()
    kept = {t: (await tickets.get(t)) for t in ("node-6.1", "node-7.1")}
    old_file, young_file = (Path(settings.dir) / kept[t].recordings[0].file for t in ("node-6.1", "node-7.1"))  # type: ignore[union-attr]
    young_file.write_bytes(young_file.read_bytes()[:-1])  # altered

    changed = await retention(settings, tickets, datetime.now().astimezone())
    await tickets.drain()
    assert [t.linkedid for t in changed] == [old.linkedid]
    assert not old_file.exists() and young_file.exists()
    after = await tickets.get(old.linkedid)
    assert after is not None and after.recordings[0].deleted and after.recordings[0].deleted_why == "retention"
    assert after.timeline[-1].event == "recording deleted"
    assert state(after.recordings[0], Path(settings.dir)) == "deleted"
    still = await tickets.get(young.linkedid)
    assert still is not None and state(still.recordings[0], Path(settings.dir)) == "altered"
    young_file.unlink()
    assert state(still.recordings[0], Path(settings.dir)) == "missing"


def test_a_ticket_stored_before_recordings_existed_reads_with_none() -> None:
    old = Ticket(linkedid="1.1", line="12345", caller="139", received="2026-01-01T00:00:00+08:00").to_json()
    del old["recordings"]
    assert Ticket.from_json(old).recordings == []


def test_metrics_show_the_disk_alarm_and_the_recordings_waiting(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from console.metrics import recording_families
    from ivr.config import Settings

    (tmp_path / "incoming").mkdir()
    raw(tmp_path / "incoming" / "node-9.1.answer.done", 0.2)

    def families(**kw: object) -> dict[str, float]:
        s = Settings(recording=RecordingSettings.model_validate({"dir": str(tmp_path), **kw}))
        return {f.name: f.samples[0].value for f in recording_families(SimpleNamespace(settings=lambda: s))}  # type: ignore[arg-type]

    calm = families(disk_alarm_percent=99.99, disk_min_free_mb=0)
    assert calm["ivr_recording_disk_alarm"] == 0 and calm["ivr_recordings_pending"] == 1
    assert calm["ivr_recording_disk_free_bytes"] > 0 and 0 < calm["ivr_recording_disk_used_ratio"] < 1
    assert families(disk_alarm_percent=0.001)["ivr_recording_disk_alarm"] == 1  # long before it is full
    assert families(disk_alarm_percent=99.99, disk_min_free_mb=10**9)["ivr_recording_disk_alarm"] == 1


def test_a_ticket_whose_file_points_outside_the_recordings_is_never_read_nor_deleted(tmp_path: Path) -> None:
    from recording.store import purge as purge_files
    from tickets.model import Recording

    root, outside = tmp_path / "recordings", tmp_path / "secret.txt"
    root.mkdir()
    outside.write_text("not a recording")
    rec = Recording(file="../secret.txt", size=outside.stat().st_size,
                    sha256=hashlib.sha256(outside.read_bytes()).hexdigest())
    assert state(rec, root) == "missing"  # never "ok": the ticket's path leaves the directory
    t = Ticket(linkedid="1.1", line="12345", caller="139", received="2020-01-01T00:00:00+08:00", recordings=[rec])
    assert purge_files(t, root, datetime.now().astimezone(), 180) == [rec]
    assert outside.exists() and rec.deleted


async def test_the_disk_is_published_for_the_wallboard_with_a_notice_when_its_alarm_changes(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    from ivr.store import keyspace

    pubsub = tickets.redis.pubsub()
    await pubsub.subscribe(keyspace.LIVE_CHANGED)
    await pubsub.get_message(timeout=1)  # the subscription's own confirmation
    worker = RecordingWorker(lambda: settings, tickets)
    try:
        await worker.publish_disk()  # the first measurement: the board learns the alarm's state
        await worker.publish_disk()  # unchanged: the board's own refresh shows the new numbers
        alarmed = settings.model_copy(update={"disk_alarm_percent": 0.001})
        worker.settings = lambda: alarmed
        await worker.publish_disk()
        notices = [m async for m in _messages(pubsub)]
    finally:
        await pubsub.aclose()
    assert notices == ["recording-disk", "recording-disk"]
    stored = await tickets.redis.hgetall(keyspace.RECORDING_DISK)
    assert stored["alarm"] == "1" and int(stored["free"]) > 0 and int(stored["total"]) >= int(stored["free"])
    assert stored["problem"] == "", "files can be created there: the alarm is the percent's"


async def _messages(pubsub: Any) -> AsyncIterator[str]:
    while (m := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
        yield m["data"] if isinstance(m["data"], str) else m["data"].decode()


async def test_given_a_file_much_shorter_than_the_talk_then_it_is_kept_marked_incomplete(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    incoming = Path(settings.dir) / "incoming"
    short = await closed(tickets, "node-10.1", answered=True, talk_seconds=9.0)
    raw(incoming / "node-10.1.answer.done", 3.0)  # the disk filled 3 s into a 9 s talk
    whole = await closed(tickets, "node-11.1", answered=True, talk_seconds=3.0)
    raw(incoming / "node-11.1.answer.done", 2.5)  # TalkTime is whole seconds, the hook a frame late: whole
    await RecordingWorker(lambda: settings, tickets).sweep()
    await tickets.drain()
    [rec] = (stored := cast(Ticket, await tickets.get(short.linkedid))).recordings
    assert rec.incomplete and (rec.seconds, rec.expected) == (3.0, 9.0) and state(rec, Path(settings.dir)) == "ok"
    assert ("recording incomplete", f"{rec.file}: 3.0 s recorded of 9.0 s talk") == (
        stored.timeline[-1].event, stored.timeline[-1].detail.split(" (")[0])
    [rec] = cast(Ticket, await tickets.get(whole.linkedid)).recordings
    assert not rec.incomplete and rec.expected == 0.0


async def test_given_a_recorded_call_that_talked_and_left_no_file_then_its_ticket_says_no_file_was_created(
    tickets: TicketStore, settings: RecordingSettings,
) -> None:
    from tickets.model import QueueVisit

    s = settings.model_copy(update={"default": "answer"})
    worker = RecordingWorker(lambda: s, tickets)
    talked = await closed(tickets, "node-12.1", answered=True, talk_seconds=8.0)
    talked.queue_visits = [QueueVisit("general", talked.received, outcome="answered", agent="agent1001")]
    await tickets.write(talked, "visits")
    brief = await closed(tickets, "node-13.1", answered=True, talk_seconds=0.5)  # nothing to miss
    opened = Ticket(linkedid="node-14.1", line="12345", caller="13900000001", received=talked.received)
    await tickets.write(opened, "opened")
    await tickets.drain()

    assert await worker.missing({"node-12.1", "node-13.1", "node-14.1"}) == {"node-14.1"}, "its close is awaited"
    await tickets.drain()
    [rec] = (stored := cast(Ticket, await tickets.get(talked.linkedid))).recordings
    assert rec.file == "" and rec.failed == "no-file" and rec.mode == "answer" and rec.source == "node-12.1.answer"
    assert state(rec, Path(settings.dir)) == "failed"
    assert (stored.timeline[-1].event, stored.timeline[-1].detail) == ("recording failed", "no file created (see Asterisk's log)")
    assert cast(Ticket, await tickets.get(brief.linkedid)).recordings == []
    await worker.missing({"node-12.1"})
    await tickets.drain()
    assert len(cast(Ticket, await tickets.get(talked.linkedid)).recordings) == 1, "said once"
    never = s.model_copy(update={"default": "never"})
    again = await closed(tickets, "node-15.1", answered=True, talk_seconds=8.0)
    again.queue_visits = talked.queue_visits
    await tickets.write(again, "visits")
    await tickets.drain()
    await RecordingWorker(lambda: never, tickets).missing({"node-15.1"})
    await tickets.drain()
    assert cast(Ticket, await tickets.get(again.linkedid)).recordings == [], "a call the policy did not record"
