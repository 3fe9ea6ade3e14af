"""A resumed session against the engine behind a real FastAGI socket, its records in a real
Redis, its follower fed with a call recorded from a real Asterisk: the stand-in's record (the
whole path, confirmed) replaces the record the first engine left as it stopped, and the ticket
shows that one path; an environment that claims a resume it cannot prove is refused before any
flow runs and changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from ivr.agi.call_guard import resume_key, sign_resume
from ivr.agi.fastagi import FastAgiServer
from ivr.config import load_config
from ivr.core.calendar import load_calendar
from ivr.engine import Engine
from ivr.flows.resume import VARIABLE
from ivr.follow import CallFollower
from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
from ivr.store import CallStore
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
EVENTS = json.loads((REPO / "tests" / "tracking" / "recorded" / "answered_rated.json").read_text())
CALL = EVENTS[0]  # its Newchannel: the live call
KEY = resume_key(b"resume-guard-test-key-0123456789")


class Node:
    """Two engines' worth of one engine (same key, same Redis) with its follower."""

    def __init__(self, redis_url: str, spool: Path):
        settings = load_config(REPO / "config", environ={}).settings
        calendar = load_calendar()
        self.calls = CallStore(redis_url, spool, "resume")
        self.tickets = TicketStore(redis_url, spool, "resume", retention_days=1, caller_key=b"resume-test-key")
        self.follower = CallFollower(settings, self.tickets, lambda: calendar)
        flows = LiveFlows.from_config(REPO / "config", catalog_loader(default_prompts_dir(REPO / "config")), environ={})
        self.engine = Engine(flows, self.calls, on_record=self.follower.on_ivr_record,
                             channel_seen=self.follower.channel_seen, resume_key=KEY)
        self.server = FastAgiServer(header_timeout=2.0)
        self.server.route("ivr", self.engine.handle_call)

    async def session(self, answers: list[str], resume: str = "", *, uniqueid: str = CALL["Uniqueid"],
                      stop_at: str = "") -> list[str]:
        """Play Asterisk for the sample line (8000): each GET DATA answered from ``answers``;
        the connection ends at the command containing ``stop_at`` (the engine is told the
        caller is gone, as when Asterisk's side of an engine stopping). The commands seen."""
        assert self.server._server
        port = self.server._server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"agi_network_script: ivr\nagi_channel: {CALL['Channel']}\nagi_uniqueid: {uniqueid}\n"
                     f"agi_callerid: {CALL['CallerIDNum']}\nagi_arg_1: 8000\nagi_arg_2: \nagi_arg_3: {resume}\n\n".encode())
        seen = []
        while line := (await reader.readline()).decode().strip():
            seen.append(line)
            if stop_at and stop_at in line:
                break
            answer = answers.pop(0) if line.startswith("GET DATA") and answers else "0"
            writer.write(f"200 result={answer}\n".encode())
        writer.close()
        async with asyncio.timeout(5):  # the engine has finished with the session (its record saved)
            while self.server.active_calls:
                await asyncio.sleep(0.01)
        return seen

    async def stored(self) -> dict[str, Any]:
        await self.calls.drain()
        record = await self.calls.get_call(CALL["Uniqueid"])
        assert record is not None
        return record


@pytest.fixture
async def node(redis_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(redis_url, tmp_path)
    await n.server.start("127.0.0.1", 0)
    n.follower.on_event(CALL)  # AMI: the citizen's call is up
    yield n
    await n.server.stop(grace=1)
    await n.calls.close()
    await n.tickets.close()


def last_point(commands: list[str]) -> str:
    return [c for c in commands if c.startswith(f"SET VARIABLE {VARIABLE} ")][-1].split(" ", 3)[3].strip('"')


async def test_a_stand_ins_record_replaces_the_first_sessions_and_the_ticket_shows_one_path(node: Node) -> None:
    first = await node.session(["1"], stop_at="sample_menu_l2")  # the first engine gone in level 2
    assert (await node.stored())["hung_up"] is True  # what it wrote as it went

    second = await node.session(["0"], last_point(first))
    assert 'GET DATA "ivr12345/sample_menu_l2"' in second[1] and "welcome_12345" not in " ".join(second)
    record = await node.stored()
    assert record["resumed"] == 1 and record["confirmed"] is True and record["route"]["type"] == "queue"
    assert [(v["node"], v["session"]) for v in record["visits"]] == [
        ("welcome", 0), ("top", 0), ("services", 1), ("agent", 1)]
    ivr = node.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr
    assert ivr.nodes == ["sample/welcome", "sample/top", "sample/services", "sample/agent"] and ivr.keys == ["1", "0"]


async def test_a_claimed_resume_without_the_engines_signature_is_refused(node: Node) -> None:
    first = await node.session(["1"], stop_at="sample_menu_l2")
    real = await node.stored()
    token = last_point(first)
    body, _, tag = token.rpartition(":")
    forged_tags = [f"{body}:{'0' * len(tag)}",  # guessed
                   sign_resume(resume_key(b"another-deployment-key-012345678"), CALL["Uniqueid"], CALL["Channel"], body)]
    for forged in forged_tags:
        assert await node.session(["9"], forged) == []  # cut off: no flow
    # a genuine point of another call, replayed onto this one
    other = await node.session(["1"], uniqueid="1700000000.4242", stop_at="sample_menu_l2")
    assert await node.session(["9"], last_point(other)) == []
    assert await node.stored() == real
    assert node.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr.keys == real["keys"]


async def test_a_later_session_without_a_resume_cannot_replace_the_stand_ins_record(node: Node) -> None:
    first = await node.session(["1"], stop_at="sample_menu_l2")
    await node.session(["0"], last_point(first))
    resumed = await node.stored()
    await node.session(["9"])  # the same call, a fresh session: session 0 again
    assert await node.stored() == resumed
