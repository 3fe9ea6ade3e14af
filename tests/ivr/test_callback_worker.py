"""The callback worker against a real Redis: one pending callback per number, and one engine per
attempt when several hear the same events (the AMI side is a recording stand-in)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ivr.callback import CallbackWorker
from ivr.config import load_config
from ivr.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
KEY = b"callback-test-caller-key-0123"


class RecordingAmi:
    """Accepts every action and remembers it (what Asterisk would have been asked to do)."""

    connected = True

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []

    async def action(self, action: dict[str, str], **_: Any) -> dict[str, str]:
        self.actions.append(action)
        return {"Response": "Success"}


def requested(linkedid: str, number: str) -> dict[str, str]:
    return {"Event": "UserEvent", "UserEvent": "IvrCallback", "Stage": "requested", "Linkedid": linkedid,
            "Queue": "general", "Number": number, "QueuedAt": "1796000000.5", "Priority": "5"}


async def test_two_engines_hearing_one_request_place_one_stand_in_and_a_second_request_of_the_number_waits(
    redis_url: str, tmp_path: Path,
) -> None:
    settings = load_config(REPO / "config", environ={}).settings
    tickets = TicketStore(redis_url, tmp_path / "spool", name="t", retention_days=1, caller_key=KEY)
    amis = [RecordingAmi(), RecordingAmi()]
    workers = [CallbackWorker(settings, tickets, redis_url, KEY, lambda a=ami: a) for ami in amis]
    try:
        for w in workers:
            w.on_event(requested("call.1", "13900000001"))
            w.on_event(requested("call.2", "13900000001"))  # the same number again: the first keeps its place
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await asyncio.sleep(1.5)
        for t in tasks:
            t.cancel()
        originated = [a for ami in amis for a in ami.actions if a["Action"] == "Originate"]
        assert len(originated) == 1
        variables = dict(v.split("=", 1) for v in originated[0]["Variable"].split(","))
        assert variables["_IVR_CALLBACK_OF"] == "call.1" and variables["__IVR_QUEUED_AT"] == "1796000000.5"
        assert variables["_IVR_CALLBACK_PRIO"] == "5" and variables["IVR_CALLBACK_NUMBER"] == "13900000001"
        assert originated[0]["Channel"] == "Local/cb@ivr-callback-queue/n"
    finally:
        for w in workers:
            await w.close()
        await tickets.close()
