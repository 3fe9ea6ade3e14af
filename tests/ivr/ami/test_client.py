"""AMI decoding: a Chinese caller name split across TCP reads must survive."""

from __future__ import annotations

from panoramisk.ami_protocol import AMIProtocol

from ivr.ami.client import Utf8AMIProtocol

EVENT = "Event: Newchannel\r\nChannel: PJSIP/pstn-1\r\nCallerIDName: 张三\r\nCallerIDNum: 13800138000\r\n\r\n".encode()


class FakeFactory:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def dispatch(self, message) -> None:  # noqa: ANN001
        self.events.append(dict(message))


class FakeTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def feed(protocol_class: type[AMIProtocol], chunks: list[bytes]) -> list[dict[str, str]]:
    proto = protocol_class()
    proto.connection_made(FakeTransport())  # type: ignore[arg-type]
    factory = FakeFactory()
    proto.factory = factory
    proto.encoding = "utf-8"
    proto.version = "11.0.0"
    for chunk in chunks:
        proto.data_received(chunk)
    return factory.events


def split_inside(data: bytes, char: str) -> list[bytes]:
    cut = data.index(char.encode()) + 1  # one byte into the 3-byte character
    return [data[:cut], data[cut:]]


def test_a_character_split_across_reads_survives() -> None:
    events = feed(Utf8AMIProtocol, split_inside(EVENT, "张"))
    assert events[0]["CallerIDName"] == "张三"


def test_panoramisk_alone_loses_it() -> None:
    """Documents the defect the subclass fixes (if panoramisk fixes it, drop the subclass)."""
    events = feed(AMIProtocol, split_inside(EVENT, "张"))
    assert events[0]["CallerIDName"] != "张三"


def test_byte_by_byte() -> None:
    events = feed(Utf8AMIProtocol, [bytes([b]) for b in EVENT])
    assert events[0]["CallerIDName"] == "张三"
