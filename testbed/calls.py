"""Calls on a running test bed: citizens dialing in, seats and sub-centers answering, and
bounded waits for what Redis then holds. Shared by the integration tests and `ivr demo`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, cast

import redis.asyncio as aioredis

from ivr.store import keyspace
from ivr.ami.client import AmiClient
from tickets.store import TicketStore
from testbed.bed import BED_QUALIFY, BedState, TestBed
from testbed.ports import PortAllocator
from testbed.sipp import Key, PeerMode, Sipp, agent_dial, citizen_call, citizen_calls, register, sip_peer
from queues.model import memberships, serving

_ports = PortAllocator()


def first_rung(queue: str, settings: Any) -> list[str]:
    """The agents of ``queue`` with the lowest penalty: Asterisk rings the others only when
    these are all busy or paused."""
    penalties = {name: memberships(a, settings.queues).get(queue) for name, a in settings.agents.items()}
    lowest = min((p for p in penalties.values() if p is not None), default=None)
    return [name for name, p in penalties.items() if p is not None and p == lowest]
_caller_ids = itertools.count(13900000001)
_batches = itertools.count()


class Phones:
    """Places citizen calls and runs seats/sub-centers as sipp peers for one test."""

    def __init__(self, bed: TestBed, workdir: Path):
        assert bed.state
        self.bed, self.state, self.workdir = bed, bed.state, workdir
        self.peers: list[Sipp] = []
        # a peer's address is free while its sipp is not running, and Asterisk binds its RTP
        # ports call by call: _ports never hands out a port a registered bed holds

    @staticmethod
    def free_port() -> int:
        """An even loopback port (and the next, for RTCP) that no bed holds: a testbed.rtp.ToneLeg's."""
        return _ports.block(2)

    @staticmethod
    def next_caller() -> str:
        """A fresh caller number: it identifies the call in AMI events and call records."""
        return str(next(_caller_ids))

    async def call(self, dialed: str, presses: list[Key] | None = None, *, hold_ms: int = 8000,
                   dtmf: str = "rfc2833", caller: str | None = None, announce_media: int | None = None,
                   audio: Path | None = None) -> tuple[Sipp, str]:
        """Start a citizen call; returns (sipp, caller number). The number identifies the call.
        ``announce_media``: the RTP port its SDP names (a testbed.rtp.ToneLeg's);
        ``audio``: an RTP capture the citizen plays after the keys (testbed/sipp/tones.py)."""
        caller = caller or self.next_caller()
        sipp = await citizen_call(
            self.workdir, sip_port=self.state.sip_port, local_port=self.state.pstn_port,
            media_port=_ports.block(4), dialed=dialed, caller=caller, presses=presses,
            hold_ms=hold_ms, dtmf=dtmf, announce_media=announce_media, audio=audio,  # type: ignore[arg-type]
        )
        self.peers.append(sipp)  # a failed test's call must not keep the pstn port bound
        return sipp, caller

    async def calls(self, dialed: str, callers: list[str], presses: list[Key], *, hold_ms: int = 8000,
                    dialed_each: list[str] | None = None) -> Sipp:
        """Citizen calls from each of ``callers`` (any From user text, up to ``;``) at once, each
        pressing ``presses``; one sipp, so they share the pstn port. ``dialed_each``: the number
        each caller dials, when they differ (digits only)."""
        if dialed_each and not all(d.isdigit() for d in dialed_each):
            raise ValueError(f"dialed numbers must be digits (they go into sipp's injection file): {dialed_each!r}")
        sipp = await citizen_calls(
            self.workdir, sip_port=self.state.sip_port, local_port=self.state.pstn_port, media_port=_ports.block(4),
            dialed=dialed, callers=callers, rate=10, presses=presses, hold_ms=hold_ms, name=f"citizens-{next(_batches)}",
            dialed_each=dialed_each,
        )
        self.peers.append(sipp)
        return sipp

    async def agent(self, name: str, caller: str, mode: PeerMode = "answer", talk_ms: int = 2000,
                    refer_to: str = "", keys: str = "", presses: list[Key] | None = None,
                    ring_ms: int = 200, also: tuple[str, ...] = (), announce_media: int | None = None,
                    audio: Path | None = None) -> Sipp:
        """Seat ``name``'s softphone, which takes the call from ``caller`` in ``mode``
        (``hangup``: the agent ends the call after ``talk_ms``; ``transfer``: blind-transfers it
        to ``refer_to``; ``keys``: keys ``keys`` during the call (a feature code, 1 s in, 300 ms
        apart), or ``presses`` with their own timing, then hangs up after ``talk_ms``), answering
        ``ring_ms`` after it starts ringing; ``also``: other callers whose call it takes instead
        (the first of them to come); ``audio``: an RTP capture it plays as the agent's voice
        (``hangup`` mode)."""
        if keys and not presses:
            presses = [Key(d, 1000 if i == 0 else 300) for i, d in enumerate(keys)]
        return await self._peer(f"agent-{name}-{mode}-{caller}", self.state.agent_ports[name], caller, mode, talk_ms,
                                refer_to, presses, ring_ms=ring_ms, also=also, announce_media=announce_media, audio=audio)

    async def supervisor(self, name: str, agent: str, mode: PeerMode = "answer", talk_ms: int = 2000,
                         announce_media: int | None = None) -> Sipp:
        """Supervisor ``name``'s phone, taking the call the engine places to join ``agent``'s call
        (its caller ID is the agent's name: supervision/ami.py)."""
        return await self._peer(f"supervisor-{name}-{mode}-{agent}", self.state.supervisor_ports[name], agent, mode,
                                talk_ms, announce_media=announce_media)

    async def seats(self, queue: str, caller: str, mode: PeerMode = "answer", talk_ms: int = 2000) -> dict[str, Sipp]:
        """The seats ``queue`` rings first (its agents of the lowest penalty) online, ready to
        answer the call from ``caller``."""
        return {name: await self.agent(name, caller, mode, talk_ms) for name in first_rung(queue, self.bed.settings)}

    async def softphone(self, agent: str, code: str) -> Sipp:
        """Seat ``agent`` dials ``code`` (a feature code) from its softphone, authenticated as
        that seat; returns the finished sipp."""
        sipp = await agent_dial(self.workdir, sip_port=self.state.sip_port, local_port=_ports.one(),
                                media_port=_ports.block(4), agent=agent, secret=self.state.agent_secrets[agent],
                                code=code, hold_ms=8000)
        self.peers.append(sipp)
        assert await sipp.wait(30) == 0, sipp.output()
        return sipp

    async def citizen_phone(self, caller: str, mode: PeerMode = "answer", talk_ms: int = 2000,
                            audio: Path | None = None) -> Sipp:
        """The citizen's own phone behind the carrier gateway (the pstn port), taking a call the
        platform places to them (a callback) whose caller ID is ``caller``; ``audio``: their voice."""
        return await self._peer(f"citizen-{mode}-{caller}", self.state.pstn_port, caller, mode, talk_ms, audio=audio)

    async def registered_softphone(self, agent: str, caller: str, expires: int = 300) -> tuple[Sipp, int]:
        """Seat ``agent``'s softphone registers with its account (digest) from a new address and
        waits there for the call from ``caller``; returns (the phone, its port)."""
        port = _ports.one()
        phone = await self.phone_at(port, caller, f"softphone-{agent}-{caller}")
        await self.register(agent, port, expires)
        return phone, port

    async def phone_at(self, port: int, caller: str, name: str) -> Sipp:
        """A softphone on ``port`` (where a registration points) that takes the call from ``caller``
        and answers Asterisk's OPTIONS probes (sipp's ``-aa``)."""
        return await self._peer(name, port, caller, "answer")

    async def register(self, agent: str, port: int, expires: int) -> None:
        sipp = await register(self.workdir, sip_port=self.state.sip_port, local_port=_ports.one(), agent=agent,
                              secret=self.state.agent_secrets[agent], contact_port=port, expires=expires)
        assert await sipp.wait(20) == 0, sipp.output()

    async def subcenter(self, name: str, caller: str, mode: PeerMode = "answer", also: tuple[str, ...] = (),
                        audio: Path | None = None) -> Sipp:
        """Sub-center ``name``'s gateway, which takes the call transferred from ``caller`` (or
        shown as one of ``also``); ``audio``: what it says once it answers (an RTP capture).
        Returns once Asterisk's OPTIONS probe has found it (the trunks are qualified: a gateway
        not seen yet is not dialed)."""
        peer = await self._peer(f"subcenter-{name}-{mode}-{caller}", self.state.subcenter_ports[name], caller, mode,
                                also=also, audio=audio)
        await trunk_state(self.bed, name, reachable=True)
        return peer

    async def _peer(self, name: str, port: int, caller: str, mode: PeerMode, talk_ms: int = 2000,
                    refer_to: str = "", presses: list[Key] | None = None, also: tuple[str, ...] = (),
                    ring_ms: int = 200, announce_media: int | None = None,
                    audio: Path | None = None) -> Sipp:
        peer = await sip_peer(self.workdir, port=port, media_port=_ports.block(4), caller=caller, mode=mode,
                              ring_ms=ring_ms, talk_ms=talk_ms, name=name, refer_to=refer_to, presses=presses,
                              also=also, announce_media=announce_media, audio=audio)
        self.peers.append(peer)
        return peer

    async def close(self) -> None:
        for p in self.peers:
            await p.stop()


async def trunk_state(bed: TestBed, trunk: str, reachable: bool, timeout: float = 10.0) -> None:
    """Wait until Asterisk's OPTIONS probe finds ``trunk``'s gateway up (``reachable``) or down:
    a probe is asked for at once (``PJSIPQualify``), then the endpoint's device state is read
    back (UNAVAILABLE once its contact is unreachable; PJSIPShowContacts' list never completes
    for panoramisk)."""
    assert bed.state
    client = AmiClient("127.0.0.1", bed.state.ami_port, "testbed", bed.state.testbed_ami_secret, events="off")
    await client.connect()
    try:
        await client.action({"Action": "PJSIPQualify", "Endpoint": trunk})
        # A probe sent before the gateway's port changed hands (the previous test's peer stopping,
        # this one starting) can still land after ours and flip the contact for up to one cycle:
        # the state read back counts only once such a probe has had its time.
        await asyncio.sleep(BED_QUALIFY.every + BED_QUALIFY.timeout)

        async def seen() -> bool:
            listing = await client.action({"Action": "DeviceStateList"}, as_list=True)
            state = next((e.get("State") for e in listing if e.get("Device") == f"PJSIP/{trunk}"), None)
            return state is not None and (state not in ("UNAVAILABLE", "UNKNOWN", "INVALID")) == reachable

        await until(seen, timeout)
    finally:
        client.close()


def for_caller(caller: str) -> Callable[[Any], bool]:
    """An AMI event filter: events of the call placed from ``caller``."""
    return lambda event: bool(event.get("CallerIDNum") == caller)


def callback_event(stage: str, **fields: str) -> Callable[[Any], bool]:
    """An AMI event filter: the dialplan's ``IvrCallback`` step ``stage`` with ``fields``."""
    return lambda e: bool(e.get("UserEvent") == "IvrCallback" and e.get("Stage") == stage
                          and all(e.get(k) == v for k, v in fields.items()))


async def pause_all(bed: TestBed, ami: AmiClient, paused: bool) -> None:
    """Every seat paused (callers wait in their queues) or back."""
    for agent in bed.settings.agents:
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Paused": "true" if paused else "false",
                          "Reason": "会议"})


async def until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` (plain or async) until it returns something truthy; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def call_record(redis: aioredis.Redis, caller: str, timeout: float = 30.0) -> dict[str, Any]:
    """The engine's call record for the call placed from ``caller`` (read from the call stream)."""

    async def find() -> dict[str, Any] | None:
        for _id, fields in await redis.xrange(keyspace.CALL_STREAM) or []:
            record = json.loads((fields or {})["record"])
            if record["caller"] == caller:
                return record
        return None

    return await until(find, timeout)


async def streamed_callers(redis: aioredis.Redis) -> list[str]:
    """The caller of every call record in the stream, in order (a record streamed twice shows twice)."""
    return [json.loads(f["record"])["caller"] for _id, f in await _entries(redis, keyspace.CALL_STREAM)]


async def followed_since(tickets: TicketStore, state: BedState, since: float, ami_port: int | None = None,
                         timeout: float = 30.0) -> None:
    """Until the engine has reconciled with Asterisk after ``since`` (it marks how far it followed)."""
    key = keyspace.cdr_progress(f"127.0.0.1:{ami_port or state.ami_port}")

    async def marked() -> bool:
        value = cast(str | None, await tickets.redis.hget(key, "followed_until"))
        return bool(value) and float(value or 0) > since

    await until(marked, timeout=timeout)


async def closed_ticket(tickets: TicketStore, caller: str, timeout: float = 30.0) -> Any:
    """The one ticket of the call placed from ``caller``, once it is closed; fails if that
    caller has more than one ticket (every test call uses a fresh caller number)."""

    async def find() -> Any:
        found = await tickets.recent_for_caller(caller, 0)
        assert len(found) <= 1, f"{len(found)} tickets for one call: {[t.linkedid for t in found]}"
        return found[0] if found and found[0].disposition else None

    return await until(find, timeout)


async def ticket_events(redis: aioredis.Redis, linkedid: str) -> list[str]:
    """The events streamed for one ticket, in order (each phase must appear once)."""
    return [f["event"] for _id, f in await _entries(redis, keyspace.TICKET_EVENTS) if f["linkedid"] == linkedid]


async def _entries(redis: aioredis.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """A whole stream (decode_responses=True: text)."""
    return cast(list[tuple[str, dict[str, str]]], await redis.xrange(stream) or [])


async def run_ivr(state: BedState, *args: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the ``ivr`` CLI against this bed (e.g. ``reload``); return (exit code, stdout+stderr).

    Same environment as :meth:`TestBed.start_engine` (state dir included: the engine's pid
    file, which ``ivr reload`` signals, is there), with ``env`` over it."""
    env = {**os.environ, **state.engine_env(), **(env or {})}  # the later wins (the seats' secrets are in both)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(errors="replace")


@contextlib.asynccontextmanager
async def only_seat(engine: TestBed, ami: AmiClient, agent: str) -> AsyncIterator[None]:
    """Every other seat of the general queue paused for the block: ``agent`` takes the call."""
    seats = serving("general", engine.settings.agents, engine.settings.queues)
    for seat in seats:
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{seat}", "Paused": "true" if seat != agent else "false"})
    try:
        yield
    finally:
        for seat in seats:
            await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{seat}", "Paused": "false"})


async def queue_caller(ami: AmiClient, queue: str, caller: str, wait_s: int = 30) -> None:
    """A caller put straight into ``queue``'s dialplan (``[ivr-queues]``), no IVR and no SIP:
    a Local channel whose far leg holds in ``[ivr-test-caller]`` (needs the bed's testbed user).
    Queue() answers nobody: the Originate gives the caller up after ``wait_s`` unless a seat took it."""
    await ami.action({"Action": "Originate", "Channel": f"Local/{queue}@ivr-queues", "Context": "ivr-test-caller",
                      "Exten": "s", "Priority": "1", "CallerID": f"test <{caller}>", "Async": "true",
                      "Timeout": str(wait_s * 1000)}, as_list=False)


async def local_call(ami: AmiClient, dialed: str, caller: str) -> None:
    """A citizen's call to ``dialed`` as the carrier hands it over (``[from-pstn]``), with no SIP: a
    Local channel whose far leg holds in ``[ivr-test-caller]`` (needs the bed's testbed user)."""
    await ami.action({"Action": "Originate", "Channel": f"Local/{dialed}@from-pstn", "Context": "ivr-test-caller",
                      "Exten": "s", "Priority": "1", "CallerID": f"test <{caller}>", "Async": "true"}, as_list=False)


@contextlib.asynccontextmanager
async def held_calls_ami(bed: TestBed) -> AsyncIterator[AmiClient]:
    """A read-all AMI session on ``bed`` (its ``testbed`` user) for a test that holds calls: every
    call still up is hung up after the block."""
    assert bed.state
    client = AmiClient("127.0.0.1", bed.state.ami_port, "testbed", bed.state.testbed_ami_secret)
    await client.connect()
    try:
        yield client
    finally:
        await hang_up_all(client)
        client.close()


async def hang_up_all(ami: AmiClient) -> None:
    """Hang up every channel still up (a test's teardown: no call outlives its test)."""
    listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    for event in listing:
        if event.get("Event") == "CoreShowChannel":
            try:
                await ami.action({"Action": "Hangup", "Channel": event["Channel"]})
            except Exception:  # noqa: BLE001 - it may have ended meanwhile
                pass


async def idle(ami: AmiClient, timeout: float = 15.0) -> None:
    """No channel left: whatever an earlier test left up is hung up, and gone (a test that counts
    the node's calls starts from zero)."""
    await hang_up_all(ami)

    async def none_left() -> bool:
        listing = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
        return not any(e.get("Event") == "CoreShowChannel" for e in listing)

    await until(none_left, timeout=timeout)


@dataclass
class AgiCommand:
    command: str  # as Asterisk ran it, e.g. 'GET DATA "ivr12345/main_menu" 3000 1'
    started: float  # loop time when AGIExecStart arrived
    ended: float | None = None
    result_code: str = ""


class AgiTrace:
    """The AGI commands Asterisk ran for one caller's call, in order (AMI AGIExecStart/End;
    needs a read-all AMI user such as the bed's ``testbed``)."""

    def __init__(self, ami: AmiClient, caller: str):
        self.caller = caller
        self.commands: list[AgiCommand] = []
        self._open: dict[str, AgiCommand] = {}
        ami.on("AGIExec*", self._on_event)

    def _on_event(self, event: Any) -> None:
        if event.get("CallerIDNum") != self.caller:
            return
        now = asyncio.get_running_loop().time()
        if event.get("Event") == "AGIExecStart":
            self._open[event["CommandId"]] = started = AgiCommand(event["Command"], now)
            self.commands.append(started)
        elif event.get("Event") == "AGIExecEnd" and event.get("CommandId") in self._open:
            ended = self._open.pop(event["CommandId"])
            ended.ended, ended.result_code = now, event.get("ResultCode", "")

    def sounds(self) -> list[str]:
        """Prompts played, in order: the file of every STREAM FILE and GET DATA."""
        out = []
        for c in self.commands:
            if c.command.startswith(("STREAM FILE ", "GET DATA ")):
                out.append(c.command.split(" ")[2].strip('"'))
        return out
