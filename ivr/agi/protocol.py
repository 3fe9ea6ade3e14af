"""AGI wire format, without I/O: the environment header and command replies.

Pure and capped, so a garbage or endless peer can neither spin nor grow memory (panoramisk
1.4 loops forever on a connect-and-close; see ASTERISK.md). The asyncio adapter in
:mod:`ivr.agi.fastagi` and the process-AGI entry both build on these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.core.callerid import normalize
from ivr.core.channel import CallerHungUp, CallInfo, ChannelError

MAX_ENVIRONMENT_BYTES = 16 * 1024  # a real AGI environment is ~1 KiB
MAX_REPLY_BYTES = 8 * 1024


class CommandFailed(ChannelError):
    """``result=-1``: the command failed, or the caller hung up; only a probe can tell."""


class AgiProtocolError(Exception):
    """The peer did not speak AGI (closed early, sent garbage, or too much)."""


class EnvironmentReader:
    """Accumulates the ``agi_*: value`` header block that ends with an empty line."""

    def __init__(self, limit: int = MAX_ENVIRONMENT_BYTES):
        self._buffer = bytearray()
        self._limit = limit
        self.environment: dict[str, str] | None = None
        self.rest = b""  # bytes that came after the header block (the start of a reply)

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once the header block is complete. ``b''`` means EOF."""
        if self.environment is not None:
            return True
        if not data:
            raise AgiProtocolError("connection closed before the AGI environment was complete")
        self._buffer += data
        end = self._buffer.find(b"\n\n")
        if end < 0:
            if len(self._buffer) > self._limit:
                raise AgiProtocolError(f"AGI environment exceeds {self._limit} bytes")
            return False
        self.environment = parse_environment(bytes(self._buffer[:end]))
        self.rest = bytes(self._buffer[end + 2:])
        return True


def parse_environment(block: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in block.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = raw.partition(":")
        if not sep or not key.startswith("agi_"):
            raise AgiProtocolError(f"not an AGI environment line: {raw[:60]!r}")
        env[key.strip()] = value.strip()
    if "agi_channel" not in env:
        raise AgiProtocolError("AGI environment has no agi_channel")
    return env


@dataclass(frozen=True)
class Reply:
    """A ``200 result=N [(data)] [key=value]`` reply."""

    result: str
    data: str = ""
    extra: str = ""

    @property
    def digit(self) -> str:
        """Digit commands return the ASCII code of the key ('57' = '9'); 0 = none.

        (GET DATA instead returns the keys themselves, which may include * and #.)"""
        if not self.result.isdigit():
            return ""
        code = int(self.result)
        return chr(code) if code > 0 else ""


# GET DATA returns the keys themselves, and * is a key (a menu's back key, an ID's final X)
_REPLY = re.compile(r"^200 result=(?P<result>-?[0-9*#]*)(?: \((?P<data>[^)]*)\))?(?P<extra>.*)$")


def parse_reply(line: str) -> Reply:
    """Parse one reply line. Hang-ups and failures raise instead of returning dicts."""
    line = line.rstrip("\r\n")
    if line == "HANGUP" or line.startswith("511"):
        raise CallerHungUp(line)
    match = _REPLY.match(line)
    if not match:
        raise ChannelError(f"AGI command failed: {line[:200]}")
    result, data = match["result"], match["data"] or ""
    if data == "hangup":
        raise CallerHungUp(line)
    if result == "-1":
        raise CommandFailed(line)
    return Reply(result=result, data=data, extra=match["extra"].strip())


def quote(arg: str) -> str:
    """Quote one AGI command argument."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def call_info(env: dict[str, str]) -> CallInfo:
    args = tuple(v for k, v in sorted(env.items(), key=lambda kv: _arg_index(kv[0])) if k.startswith("agi_arg_"))
    return CallInfo(
        unique_id=env.get("agi_uniqueid", ""),
        channel=env["agi_channel"],
        dialed=args[0] if args else env.get("agi_extension", ""),
        # normalized by the dialplan already; again here: whoever sent this environment is outside
        caller=normalize(env.get("agi_callerid", "")),
        language=env.get("agi_language", "zh"),
        arguments=args,
        extra={k: v for k, v in env.items() if not k.startswith("agi_arg_")},
    )


def _arg_index(key: str) -> int:
    return int(key.rsplit("_", 1)[1]) if key.startswith("agi_arg_") else 0
