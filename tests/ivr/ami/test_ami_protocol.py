"""AMI framing without a socket: recorded Asterisk events, as the bytes Asterisk sends, come out
whole and unchanged whatever the reads' boundaries (inside a Chinese character too), and a peer
that never ends a message is refused at the cap with nothing kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.ami.protocol import EOM, AmiFramingError, Framer, is_plain_event, parse_event

RECORDED = Path(__file__).resolve().parents[2] / "tracking" / "recorded"


def recorded_events() -> list[dict[str, str]]:
    """Every event of the recorded calls, without panoramisk's own ``content`` key."""
    events = []
    for path in sorted(RECORDED.glob("*.json")):
        events += [{k: v for k, v in e.items() if k != "content"} for e in json.loads(path.read_text(encoding="utf-8"))]
    return events


def wire(event: dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in event.items()) + "\r\n").encode("utf-8")


def frame(stream: bytes, size: int, framer: Framer | None = None) -> list[str]:
    framer = framer or Framer()
    blocks: list[str] = []
    for at in range(0, len(stream), size):
        blocks += framer.feed(stream[at:at + size])
    assert framer.pending == ""
    return blocks


EVENTS = recorded_events()
STREAM = b"".join(wire(e) for e in EVENTS)


def test_the_recording_holds_chinese_text() -> None:
    assert len(EVENTS) > 40 and STREAM.decode("utf-8") != STREAM.decode("ascii", errors="ignore")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 1000, len(STREAM)])
def test_recorded_events_survive_any_read_size(size: int) -> None:
    assert [parse_event(b) for b in frame(STREAM, size)] == EVENTS


def test_a_read_that_ends_inside_a_character_keeps_it() -> None:
    data = "Event: Newchannel\r\nCallerIDName: 张三\r\n\r\n".encode()
    cut = data.index("张".encode()) + 1
    framer = Framer()
    assert framer.feed(data[:cut]) == []
    assert parse_event(framer.feed(data[cut:])[0])["CallerIDName"] == "张三"


def test_a_message_end_split_across_reads_is_found() -> None:
    data = wire(EVENTS[0])
    framer = Framer()
    assert framer.feed(data[:-2]) == [] and framer.pending.endswith("\r\n")
    assert framer.feed(data[-2:]) == [data.decode()[:-len(EOM)]]


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    block = Framer().feed(b"Event: X\r\nName: \xff\xfe\r\n\r\n")[0]
    assert parse_event(block)["Name"] == "\ufffd\ufffd"


def test_past_the_cap_the_unfinished_message_is_refused_and_forgotten() -> None:
    framer = Framer(limit=100)
    assert framer.feed(b"Event: Flood\r\nX: " + b"y" * 80) == []
    with pytest.raises(AmiFramingError):
        framer.feed(b"y" * 10 + EOM.encode() + b"z" * 101)  # the message it completed goes too
    assert framer.pending == ""
    assert framer.feed(wire(EVENTS[0])) == [wire(EVENTS[0]).decode()[:-len(EOM)]]


def test_only_events_that_answer_no_action_are_plain() -> None:
    assert is_plain_event("Event: Newchannel\r\nChannel: PJSIP/pstn-1")
    assert not is_plain_event("Event: CoreShowChannel\r\nActionID: 42\r\nChannel: PJSIP/pstn-1")
    assert not is_plain_event("Event: Shutdown\r\nShutdown: Cleanly")
    assert not is_plain_event("Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted")


def test_a_repeated_header_keeps_asterisks_first_value() -> None:
    event = parse_event("Event: UserEvent\r\nLinkedid: 1796000000.7\r\nNumber: 1\r\nLinkedid: 1796000000.1")
    assert event["Linkedid"] == "1796000000.7"
