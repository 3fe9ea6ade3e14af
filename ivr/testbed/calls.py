"""Calls on a running test bed: citizens dialing in, seats and sub-centers answering, and
bounded waits for what Redis then holds. Shared by the integration tests and `ivr demo`."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis

from ivr.testbed.bed import TestBed
from ivr.testbed.ports import PortAllocator
from ivr.testbed.sipp import Key, Sipp, citizen_call, sip_peer

_ports = PortAllocator()
_caller_ids = itertools.count(13900000001)


class Phones:
    """Places citizen calls and runs seats/sub-centers as sipp peers for one test."""

    def __init__(self, bed: TestBed, workdir: Path):
        assert bed.state
        self.bed, self.state, self.workdir = bed, bed.state, workdir
        self.peers: list[Sipp] = []

    @staticmethod
    def next_caller() -> str:
        """A fresh caller number: it identifies the call in AMI events and call records."""
        return str(next(_caller_ids))

    async def call(self, dialed: str, presses: list[Key] | None = None, *, hold_ms: int = 8000,
                   dtmf: str = "rfc2833", caller: str | None = None) -> tuple[Sipp, str]:
        """Start a citizen call; returns (sipp, caller number). The number identifies the call."""
        caller = caller or self.next_caller()
        sipp = await citizen_call(
            self.workdir, sip_port=self.state.sip_port, local_port=self.state.pstn_port,
            media_port=_ports.block(4), dialed=dialed, caller=caller, presses=presses,
            hold_ms=hold_ms, dtmf=dtmf,  # type: ignore[arg-type]
        )
        return sipp, caller

    async def agent(self, name: str, mode: str = "answer", calls: int = 1) -> Sipp:
        peer = await sip_peer(self.workdir, port=self.state.agent_ports[name], media_port=_ports.block(4),
                              mode=mode, calls=calls, name=f"agent-{name}-{mode}")  # type: ignore[arg-type]
        self.peers.append(peer)
        return peer

    async def subcenter(self, name: str, mode: str = "answer") -> Sipp:
        peer = await sip_peer(self.workdir, port=self.state.subcenter_ports[name], media_port=_ports.block(4),
                              mode=mode, name=f"subcenter-{name}-{mode}")  # type: ignore[arg-type]
        self.peers.append(peer)
        return peer

    async def close(self) -> None:
        for p in self.peers:
            await p.stop()


async def until(predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def call_record(redis: aioredis.Redis, caller: str, timeout: float = 30.0) -> dict[str, Any]:
    """The engine's call record for the call placed from ``caller`` (read from ivr:calls)."""

    async def find() -> dict[str, Any] | None:
        for _id, fields in await redis.xrange("ivr:calls"):
            record = json.loads(fields["record"])
            if record["caller"] == caller:
                return record
        return None

    return await until(find, timeout)
