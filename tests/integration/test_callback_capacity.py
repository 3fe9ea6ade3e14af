"""Callbacks on a full node (docs/cluster.md, "When a node dies"): a node's inherited callbacks
wait while it has no room for their stand-ins; a stand-in Asterisk refuses anyway is heard at
once and tried again after ``retry_after``; once calls end the callback is placed and answered.

Its own bed: Asterisk rendered with ``sip.maxcalls: 10`` and ``callbacks.headroom: 2`` (the
session bed has no cap). The node is filled with held Local calls; the callback is a lost node's
request handed to this node as the node watch hands it (``keep``), on a ticket in Redis."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from ivr.ami.client import AmiClient
from ivr.callback import keep
from ivr.store import keyspace, redis_client
from queues import callback as policy
from testbed.bed import TestBed
from testbed.calls import Phones, callback_event, held_calls_ami, pause_all, until
from testbed.cluster_calls import current_calls, fill_node
from testbed.pytest_plugin import kept_logs
from tickets.model import Ticket
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
MAXCALLS, HEADROOM = 10, 2
RTP_END = "  rtp_end: 10999\n"
FILLERS = "/^Local.s@ivr-test-caller-/"  # the held calls' channels (AMI Hangup takes a regex)


def set_maxcalls(config: Path, maxcalls: int) -> None:
    engine = config / "engine.yaml"
    text = engine.read_text(encoding="utf-8")
    head, _, tail = text.partition(RTP_END)
    tail = tail.split("\n", 1)[1] if tail.startswith("  maxcalls:") else tail
    engine.write_text(f"{head}{RTP_END}  maxcalls: {maxcalls}\n{tail}", encoding="utf-8")


@pytest.fixture(scope="module")
def capped_bed(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBed]:
    root = tmp_path_factory.mktemp("capped")
    shutil.copytree(config_dir, root / "config")
    (root / "prompts").symlink_to(REPO / "prompts")
    assert RTP_END in (root / "config" / "engine.yaml").read_text(encoding="utf-8")
    set_maxcalls(root / "config", MAXCALLS)
    queues = root / "config" / "queues.yaml"
    text = queues.read_text(encoding="utf-8")
    assert "\ncallbacks:\n  node_loss:" in text
    queues.write_text(text.replace("\ncallbacks:\n", f"\ncallbacks:\n  headroom: {HEADROOM}\n"), encoding="utf-8")
    with TestBed(root / "config", name=f"pytest-cap-{os.getpid()}").running(kept_logs("testbed-logs-capacity")) as tb:
        yield tb


@pytest.fixture
async def bed_ami(capped_bed: TestBed) -> AsyncIterator[AmiClient]:
    async with held_calls_ami(capped_bed) as client:
        yield client


def engine_log(bed: TestBed) -> str:
    return bed.engine_log().read_text(encoding="utf-8", errors="replace")


async def reload_engine(bed: TestBed) -> None:
    """SIGHUP the engine and wait for it to say the new config is live."""
    assert bed.state and bed.state.engine_pid
    before = engine_log(bed).count("reloaded config:")
    os.kill(bed.state.engine_pid, signal.SIGHUP)
    await until(lambda: engine_log(bed).count("reloaded config:") > before, 20)


async def test_a_callback_due_on_a_full_node_waits_is_retried_after_a_refusal_and_is_answered_once_calls_end(
    capped_bed: TestBed, bed_ami: AmiClient, tmp_path: Path,
) -> None:
    bed, ami = capped_bed, bed_ami
    assert bed.state
    settings = bed.settings
    retry_after = settings.queues["general"].callback.retry_after  # type: ignore[union-attr]
    tickets = TicketStore(settings.redis, tmp_path / "reader", name="test", retention_days=1,
                          caller_key=bed.state.caller_key.encode())
    redis = redis_client(settings.redis, timeout=2)
    phones = Phones(bed, tmp_path)
    await pause_all(bed, ami, True)
    try:
        # the node full: Asterisk holds maxcalls calls (each a Local far leg waiting in the dialplan)
        assert await fill_node(ami, MAXCALLS) == MAXCALLS

        # a lost node's caller, handed to this node's callback worker as the node watch does
        number, linkedid = "13900000042", "1796000042.7"
        await tickets.write(Ticket(linkedid=linkedid, line="12345", caller=number, disposition="node_lost",
                                   received="2026-12-06T10:00:00+08:00"), "closed")
        await until(lambda: tickets.get(linkedid), 10)
        joins: list[dict[str, Any]] = []
        ami.on("QueueCallerJoin", lambda e: joins.append(e) if e.get("Channel", "").startswith("Local/cb@") else None)
        results: list[str] = []
        ami.on("UserEvent", lambda e: results.append(e["DialStatus"]) if callback_event("result", Of=linkedid)(e) else None)
        request = policy.node_loss_request(settings.callbacks.node_loss, linkedid, number, time.time(), 0, time.time())
        request.next_at = time.time()
        assert await keep(redis, request, bed.state.caller_key.encode())

        # pacing: the worker looks, finds no room for a stand-in, and places nothing
        await until(lambda: "callbacks: the node is full" in engine_log(bed), 20)
        stored = await redis.hget(keyspace.CALLBACKS, linkedid)
        assert stored and policy.CallbackRequest.from_json(json.loads(stored)).status == policy.PENDING
        assert joins == [] and await current_calls(ami) == MAXCALLS

        # forced: the engine believes in 40 calls (config changed, Asterisk not restarted): its
        # stand-in is refused by Asterisk, heard at once, a NODE_BUSY leg, next try retry_after later
        set_maxcalls(bed.loaded.config_dir, 40)
        await reload_engine(bed)

        async def busy_leg() -> Any:
            t = await tickets.get(linkedid)
            legs = (t.callback or {}).get("attempts", []) if t else []
            return legs[0] if legs and legs[0]["result"] == policy.NODE_BUSY else None

        leg = await until(busy_leg, 20)
        assert leg["reason"] == policy.NODE_BUSY_TEXT and leg["number"] == ""
        stored = await redis.hget(keyspace.CALLBACKS, linkedid)
        pending = policy.CallbackRequest.from_json(json.loads(stored or "{}"))
        assert pending.status == policy.PENDING and abs(pending.next_at - leg["ended"] - retry_after) < 0.01
        set_maxcalls(bed.loaded.config_dir, MAXCALLS)
        await reload_engine(bed)

        # calls end: the next try is placed, a seat takes the stand-in, the citizen answers
        phone = await phones.citizen_phone("12345", mode="hangup", talk_ms=1000)
        seat = await phones.agent("agent1001", number)
        await ami.action({"Action": "QueuePause", "Interface": "PJSIP/agent1001", "Paused": "false"})
        await ami.action({"Action": "Hangup", "Channel": FILLERS})
        assert await phone.wait(60) == 0, phone.output()
        assert await seat.wait(20) == 0, seat.output()
        await until(lambda: results == ["ANSWER"], 15)

        async def answered() -> Any:
            t = await tickets.get(linkedid)
            return t if t and t.callback and t.callback.get("status") == policy.ANSWERED else None

        ticket = await until(answered, 20)
        legs = ticket.callback["attempts"]
        assert [a["result"] for a in legs][-1] == "ANSWER" and legs[-1]["number"] == number
        assert {a["result"] for a in legs[:-1]} == {policy.NODE_BUSY}  # refused while full, never dialed
        assert len(joins) == 1 and results == ["ANSWER"]  # one stand-in, one call to the citizen
        assert ticket.disposition == "node_lost"  # a lost node's call keeps saying so
    finally:
        await pause_all(bed, ami, False)
        await phones.close()
        await redis.aclose()
        await tickets.close()
        set_maxcalls(bed.loaded.config_dir, MAXCALLS)
