"""AGI wire format: recorded bytes in, typed results or exceptions out."""

import pytest

from ivr.agi.protocol import AgiProtocolError, CommandFailed, EnvironmentReader, parse_reply, quote
from ivr.core.channel import CallerHungUp, ChannelError

ENV = (
    b"agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1:4573/ivr\n"
    b"agi_channel: PJSIP/pstn-00000001\nagi_language: zh\nagi_uniqueid: 1700000000.1\n"
    b"agi_callerid: 13800138000\nagi_calleridname: \xe5\xbc\xa0\xe4\xb8\x89\nagi_extension: 12345\n"
    b"agi_arg_1: 12345\n\n"
)


def test_environment_is_parsed_when_it_arrives_in_pieces() -> None:
    reader = EnvironmentReader()
    chunks = [ENV[i : i + 7] for i in range(0, len(ENV), 7)]
    done = [reader.feed(c) for c in chunks]
    assert done[-1] and not any(done[:-1])
    assert reader.environment is not None
    assert reader.environment["agi_calleridname"] == "张三"
    assert reader.environment["agi_arg_1"] == "12345"


def test_connect_and_close_is_an_error_not_a_spin() -> None:
    reader = EnvironmentReader()
    with pytest.raises(AgiProtocolError, match="closed"):
        reader.feed(b"")


def test_endless_header_is_capped() -> None:
    reader = EnvironmentReader(limit=1024)
    with pytest.raises(AgiProtocolError, match="exceeds"):
        for _ in range(100):
            reader.feed(b"agi_x: " + b"y" * 100 + b"\n")


def test_garbage_is_rejected() -> None:
    reader = EnvironmentReader()
    with pytest.raises(AgiProtocolError):
        reader.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\n")


@pytest.mark.parametrize(
    "line, result, data, digit",
    [
        ("200 result=0", "0", "", ""),
        ("200 result=57", "57", "", "9"),
        ("200 result= (timeout)", "", "timeout", ""),
        ("200 result=12 (timeout)", "12", "timeout", "\x0c"),
        ("200 result=1 (张三)", "1", "张三", "\x01"),
        ("200 result=49 endpos=8000", "49", "", "1"),
        ("200 result=*", "*", "", ""),  # GET DATA returns the typed keys themselves
        ("200 result=12*# (timeout)", "12*#", "timeout", ""),
    ],
)
def test_replies(line: str, result: str, data: str, digit: str) -> None:
    reply = parse_reply(line)
    assert (reply.result, reply.data, reply.digit) == (result, data, digit)


@pytest.mark.parametrize("line", ["HANGUP", "511 Command Not Permitted on a dead channel or intercept routine", "200 result=0 (hangup)"])
def test_hangups_raise(line: str) -> None:
    with pytest.raises(CallerHungUp):
        parse_reply(line)


@pytest.mark.parametrize("line", ["510 Invalid or unknown command", "520 End of proper usage.", "garbage"])
def test_errors_raise(line: str) -> None:
    with pytest.raises(ChannelError):
        parse_reply(line)


def test_minus_one_is_a_failure_to_be_probed_not_yet_a_hangup() -> None:
    with pytest.raises(CommandFailed):
        parse_reply("200 result=-1 endpos=0")


def test_quote_escapes() -> None:
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
