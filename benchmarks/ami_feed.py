"""The AMI side of bench_ami_events.py: recorded calls copied into one event stream, and a
loopback server that speaks just enough AMI to log a client in and then plays that stream.

The calls are the four real event sequences in ``tests/tracking/recorded/`` (as the engine's
event filter passes them). Each copy gets fresh uniqueids/linkedids, channel names and caller
number, and its own start time; the copies' events are merged in time order into one stream of
raw AMI text. Every client is sent the same bytes, except the ``Timestamp`` values, which are
written when the stream starts (same width, so the same sizes): a paced stream is replayed in
real time and its timestamps are the moments it is sent, as Asterisk's would be.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "tracking" / "recorded"

# call kind → the disposition its ticket must end with (tests/tracking/test_tracker.py)
KINDS = {
    "answered_rated": "answered",
    "hangup_in_greeting": "abandoned_ivr",
    "abandoned_in_queue": "abandoned_queue",
    "tax_busy_then_answered": "transfer_failed",
}
# each recorded call's ticket phases: opened, its queue visits' (queue:<queue>:<n>), closed, a rated call's survey
PHASES = {
    "answered_rated": {"opened", "queue:general:1", "closed", "survey"},  # survey: its rating counted (queues/kpi.py)
    "hangup_in_greeting": {"opened", "closed"},
    "abandoned_in_queue": {"opened", "queue:general:1", "closed"},
    "tax_busy_then_answered": {"opened", "queue:general:1", "closed"},
}
EOL = "\r\n"
_UNIQUEID = re.compile(r"capture-\d+\.\d+")
_CHANNEL = re.compile(r"(?<=/)([\w.-]+)-([0-9a-f]{8})$")  # PJSIP/agent1001-0000001a
EPOCH = 1796160000  # in the copies' uniqueids (Asterisk's <system>-<epoch>.<n>: the same length)


@dataclass(frozen=True)
class RecordedCall:
    kind: str
    events: list[dict[str, str]]  # in order, every channel hung up at the end
    caller: str

    @property
    def linkedid(self) -> str:
        return self.events[0]["Linkedid"]


def load_calls() -> list[RecordedCall]:
    """The four recorded calls, each completed so that all its channels hang up."""
    calls = []
    for kind in KINDS:
        raw = json.loads((RECORDED / f"{kind}.json").read_text(encoding="utf-8"))
        events = [{k: v for k, v in e.items() if k != "content"} for e in raw]  # panoramisk's body, not a header
        calls.append(RecordedCall(kind, completed(events), events[0]["CallerIDNum"]))
    return calls


def completed(events: list[dict[str, str]]) -> list[dict[str, str]]:
    """The recording of the tax call stops while the caller talks to the agent: hang up what is
    still up 5 s later (the agent's leg first, the caller's last, as the tracker test does)."""
    up = {e["Uniqueid"]: e for e in events if e["Event"] == "Newchannel"}
    for e in events:
        if e["Event"] == "Hangup":
            up.pop(e["Uniqueid"], None)
    linkedid, last = events[0]["Linkedid"], float(events[-1]["Timestamp"])
    out = list(events)
    for n, new in enumerate(sorted(up.values(), key=lambda e: e["Uniqueid"] == linkedid)):
        hangup = {"Event": "Hangup", "Privilege": "call,all", "Timestamp": f"{last + 5 + n:.6f}"}
        hangup.update({k: v for k, v in new.items() if k not in ("Event", "Privilege", "Timestamp")})
        hangup.update(ChannelState="6", ChannelStateDesc="Up", Cause="16", **{"Cause-txt": "Normal Clearing"})
        out.append(hangup)
    return out


# kind → the engine's IVR path of that call: keys, route, request type, other fields
IVR_PATHS: dict[str, tuple[list[str], str, str, dict[str, Any]]] = {
    "answered_rated": (["1"], "queue", "consult", {}),
    "hangup_in_greeting": ([], "hangup", "", {"hung_up": True}),
    "abandoned_in_queue": (["0"], "queue", "", {}),
    "tax_busy_then_answered": ([], "transfer", "", {"dialed": "12366", "flow": "", "visits": []}),
}


def ivr_record(call: RecordedCall, linkedid: str) -> dict[str, Any]:
    """The engine's own IVR record of the call (what its FastAGI side hands the follower), as
    :func:`ivr.engine.record_to_json` writes it; the same paths as the tracker tests."""
    keys, route, request_type, extra = IVR_PATHS[call.kind]
    record: dict[str, Any] = {
        "unique_id": linkedid, "dialed": "12345", "flow": "main", "keys": keys, "hung_up": False,
        "visits": [{"flow": "main", "node": "greeting"}, {"flow": "main", "node": "menu"}],
        "variables": {"request_type": request_type} if request_type else {},
        "route": {"type": route}, "dialplan_fallback": False, "error": None,
    }
    return record | extra


@dataclass(frozen=True)
class PlannedCall:
    kind: str
    linkedid: str
    caller: str
    record: dict[str, Any]  # the engine's IVR record of this copy


@dataclass(frozen=True)
class StreamEvent:
    at: float  # s after the stream's start (event time)
    head: bytes  # the wire text up to the Timestamp value
    tail: bytes  # after it, through the blank line that ends the event


@dataclass(frozen=True)
class Stream:
    calls: list[PlannedCall]
    events: list[StreamEvent]  # in time order

    @property
    def span(self) -> float:
        return self.events[-1].at if self.events else 0.0

    def wire(self, base: float) -> Iterator[bytes]:
        """Each event's bytes, with ``Timestamp`` = ``base`` + its time."""
        for e in self.events:
            yield e.head + f"{base + e.at:.6f}".encode() + e.tail


def build_stream(copies: int, calls_per_s: float, tag: str = "bench") -> Stream:
    """``copies`` calls (the four kinds in turn), one starting every 1/``calls_per_s`` s."""
    recorded = load_calls()
    names = _Names(tag)
    planned: list[PlannedCall] = []
    timed: list[tuple[float, int, dict[str, str]]] = []
    for i in range(copies):
        call = recorded[i % len(recorded)]
        caller = f"139{10_000_000 + i:08d}"
        ids: dict[str, str] = {}
        channels: dict[str, str] = {}
        start, first = i / calls_per_s, float(call.events[0]["Timestamp"])
        for n, event in enumerate(call.events):
            copy = {k: names.rename(k, v, call.caller, caller, ids, channels) for k, v in event.items()}
            timed.append((start + float(event["Timestamp"]) - first, i * 1000 + n, copy))
        linkedid = ids[call.linkedid]
        planned.append(PlannedCall(call.kind, linkedid, caller, ivr_record(call, linkedid)))
    timed.sort(key=lambda t: (t[0], t[1]))
    return Stream(planned, [_wire(at, e) for at, _n, e in timed])


class _Names:
    """Fresh names for each copy of a call: uniqueids and channel suffixes count up across the
    whole stream, as Asterisk's do."""

    def __init__(self, tag: str):
        self.tag = tag
        self._ids = 0
        self._channels = 0

    def rename(self, key: str, value: str, old_caller: str, caller: str, ids: dict[str, str],
               channels: dict[str, str]) -> str:
        if key == "SystemName":
            return self.tag
        if value == old_caller:
            return caller
        value = _UNIQUEID.sub(lambda m: self._fresh(ids, m.group(0), self._next_id), value)
        return _CHANNEL.sub(lambda m: f"{m.group(1)}-{self._fresh(channels, m.group(2), self._next_channel)}", value)

    @staticmethod
    def _fresh(seen: dict[str, str], old: str, make: Callable[[], str]) -> str:
        if old not in seen:
            seen[old] = make()
        return seen[old]

    def _next_id(self) -> str:
        self._ids += 1
        return f"{self.tag}-{EPOCH}.{self._ids}"

    def _next_channel(self) -> str:
        self._channels += 1
        return f"{self._channels:08x}"


def _wire(at: float, event: dict[str, str]) -> StreamEvent:
    if "Timestamp" not in event:
        raise ValueError(f"an event without a Timestamp: {event}")
    head: list[str] = []
    tail: list[str] = []
    part = head
    for key, value in event.items():
        if key == "Timestamp":
            head.append("Timestamp: ")
            part = tail
            tail.append(EOL)
        else:
            part.append(f"{key}: {value}{EOL}")
    tail.append(EOL)
    return StreamEvent(at, "".join(head).encode(), "".join(tail).encode())


# --- the server ----------------------------------------------------------------------------

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
START_ACTION = "benchstream"  # the benchmark's own action: "send me the stream now"


def _reply(action_id: str, *lines: str) -> bytes:
    return EOL.join(("Response: Success", f"ActionID: {action_id}", *lines, "", "")).encode()


class FakeAmi:
    """Logs any client in, answers the engine's reconciliation (no channel is up) and Ping,
    and plays :attr:`stream` to a client that sends ``Action: BenchStream``.

    ``speed`` 0 writes the whole stream at once (a burst: as fast as the client reads);
    otherwise each event is written on its own at its time, ``speed`` times real time.
    """

    def __init__(self) -> None:
        self.stream: Stream | None = None
        self.speed = 1.0
        self.streams_sent = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode("utf-8", "replace")
                headers = dict(line.split(": ", 1) for line in block.split(EOL) if ": " in line)
                fields = {k.lower(): v for k, v in headers.items()}
                writer.write(self._answer(fields.get("action", "").lower(), fields.get("actionid", "")))
                if fields.get("action", "").lower() == START_ACTION:
                    task = asyncio.get_running_loop().create_task(self._play(writer))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, action: str, action_id: str) -> bytes:
        if action == "login":
            # one write, so the client reads both at once: FullyBooted is in before the login returns
            return _reply(action_id, "Message: Authentication accepted") + EOL.join((
                "Event: FullyBooted", "Privilege: system,all", "Uptime: 60", "LastReload: 60",
                "Status: Fully Booted", "", "")).encode()
        if action == "corestatus":
            return _reply(action_id, "CoreStartupDate: 2026-12-01", "CoreStartupTime: 08:00:00",
                          "CoreReloadDate: 2026-12-01", "CoreReloadTime: 08:00:00", "CoreCurrentCalls: 0")
        if action == "coreshowchannels":
            return _reply(action_id, "EventList: start", "Message: Channels will follow") + EOL.join((
                "Event: CoreShowChannelsComplete", f"ActionID: {action_id}", "EventList: Complete",
                "ListItems: 0", "", "")).encode()
        if action == "ping":
            return _reply(action_id, "Ping: Pong", f"Timestamp: {time.time():.6f}")
        if action == START_ACTION:
            n = len(self.stream.events) if self.stream else 0
            return _reply(action_id, f"Message: {n} events follow")
        return EOL.join(("Response: Error", f"ActionID: {action_id}", "Message: Invalid/unknown command",
                         "", "")).encode()

    async def _play(self, writer: asyncio.StreamWriter) -> None:
        stream = self.stream
        if stream is None:
            return
        self.streams_sent += 1
        loop = asyncio.get_running_loop()
        t0, base = loop.time(), time.time()
        try:
            if self.speed <= 0:
                writer.write(b"".join(stream.wire(base)))
            else:
                for event, data in zip(stream.events, stream.wire(base)):
                    delay = t0 + event.at / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    writer.write(data)  # one write per event, as Asterisk does
            await writer.drain()
        except ConnectionError:
            pass  # the client went away (it failed: its process says why)
