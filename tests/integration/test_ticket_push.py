"""Ticket events of real calls reach a department's webhook from `ivr serve`: signed, caller
masked, each event once — also when the engine is restarted while a delivery is in flight."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from ivr.store import keyspace
from ivr.core.masking import mask_number
from tickets.store import TicketStore
from testbed.bed import TestBed
from testbed.calls import Phones, closed_ticket, until
from testbed.ports import PortAllocator
from tickets.push import verify_signature

KEY = "test-only-webhook-key"


class Receiver:
    """A department endpoint: checks each signature, answers slowly the closed event of the
    caller named ``slow_for`` (masked, as it arrives). It also gets the bed's earlier events:
    a new endpoint's consumer group starts at the beginning of the stream."""

    def __init__(self, slow_closed: float = 0.0):
        self.slow_closed = slow_closed
        self.slow_for = ""
        self.events: list[tuple[str, dict[str, Any]]] = []  # (event id, body) as received
        self.bad_signatures = 0
        self.started = asyncio.Event()  # a slow delivery has begun

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(KEY, body, request.headers["X-Ivr-Timestamp"], request.headers["X-Ivr-Signature"]):
            self.bad_signatures += 1
            return web.Response(status=401)
        data = json.loads(body)
        if data["event"] == "closed" and self.slow_closed and data["ticket"]["caller"] == self.slow_for:
            self.started.set()
            await asyncio.sleep(self.slow_closed)
        self.events.append((request.headers["X-Ivr-Event-Id"], data))
        return web.Response(text="ok")


@pytest.fixture
async def receiver(bed: TestBed, config_dir: Path) -> AsyncIterator[tuple[Receiver, dict[str, str]]]:
    """A receiver on loopback configured as webhook ``city`` of the bed's engine (restarted with it)."""
    rx = Receiver(slow_closed=3.0)
    app = web.Application()
    app.router.add_post("/tickets", rx.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = PortAllocator().one()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    tickets_yaml = config_dir / "tickets.yaml"
    original = tickets_yaml.read_text()
    tickets_yaml.write_text(original.replace(
        "  webhooks: {}", f"  webhooks:\n    city: {{url: 'http://127.0.0.1:{port}/tickets', timeout: 10}}"))
    env = {"IVR_WEBHOOK_SECRET_CITY": KEY}
    bed.kill_engine()
    bed.start_engine(env)
    try:
        yield rx, env
    finally:
        tickets_yaml.write_text(original)
        bed.kill_engine()
        bed.start_engine()
        await runner.cleanup()


async def test_given_a_department_webhook_when_a_call_ends_then_its_events_arrive_signed_masked_and_once_across_a_restart(
    bed: TestBed, phones: Phones, tickets: TicketStore, redis: Any, receiver: tuple[Receiver, dict[str, str]],
) -> None:
    rx, env = receiver
    caller = phones.next_caller()
    rx.slow_for = mask_number(caller)
    sipp, _ = await phones.call("12345", [], hold_ms=1500, caller=caller)
    assert await sipp.wait(20) == 0, sipp.output()
    ticket = await closed_ticket(tickets, caller)

    await asyncio.wait_for(rx.started.wait(), 30)  # the closed event is being delivered ...
    # ... when the engine is stopped (SIGTERM): it lets the POST finish. In a thread: this
    # test's event loop is the receiver, which must go on answering meanwhile.
    await asyncio.to_thread(bed.stop_engine)
    await asyncio.to_thread(bed.start_engine, env)
    await until(lambda: f"{ticket.linkedid}:closed" in [event_id for event_id, _data in rx.events], timeout=30)

    async def nothing_pending() -> bool:  # no entry left that any engine could send again
        return (await redis.xpending(keyspace.TICKET_EVENTS, keyspace.push_group("city")))["pending"] == 0

    await until(nothing_pending, timeout=30)

    mine = [(event_id, data) for event_id, data in rx.events if data["ticket"]["linkedid"] == ticket.linkedid]
    assert [event_id for event_id, _data in mine] == [f"{ticket.linkedid}:opened", f"{ticket.linkedid}:closed"]
    closed = mine[1][1]
    assert closed["number"] == ticket.number and closed["ticket"]["disposition"] == "abandoned_ivr"
    assert closed["ticket"]["caller"] != caller and "****" in closed["ticket"]["caller"]  # masked
    assert rx.bad_signatures == 0
