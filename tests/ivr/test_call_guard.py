"""Made-up AGI environments against a live call (finding 9): the engine behind a real FastAGI
socket, its call records in a real Redis, its follower fed with a call recorded from a real
Asterisk. A forged environment that reuses the live call's uniqueid on another channel can
neither replace the call's record nor its ticket's IVR path, whether it comes before or after
the real one; an environment not shaped like Asterisk's is refused; a record is bounded. A
stand-in engine's resumed session (ivr/flows/resume.py) replaces the record the first engine left
and the ticket shows its one path; a resume the environment cannot prove is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from ivr.store import keyspace
from ivr.agi.fastagi import FastAgiServer
from ivr.agi.call_guard import MAX_ITEMS, MAX_TEXT, bounded, identity_problem, resume_key, sign_resume
from ivr.config import load_config
from ivr.engine import Engine
from ivr.flows.resume import VARIABLE
from ivr.core.calendar import load_calendar
from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
from ivr.follow import CallFollower
from ivr.store import CallStore
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
EVENTS = json.loads((REPO / "tests" / "tracking" / "recorded" / "answered_rated.json").read_text())
CALL = EVENTS[0]  # its Newchannel: the live call the attacker names
FORGED_CHANNEL = "PJSIP/pstn-0000ffff"
RESUME_KEY = resume_key(b"guard-test-engines-key-0123456789")


class Bed:
    """Engine + FastAGI + follower, as ``ivr serve`` wires them, on a real Redis."""

    def __init__(self, redis_url: str, spool: Path):
        settings = load_config(REPO / "config", environ={}).settings
        calendar = load_calendar()
        self.calls = CallStore(redis_url, spool, "guard")
        self.tickets = TicketStore(redis_url, spool, "guard", retention_days=1, caller_key=b"guard-test-key")
        self.follower = CallFollower(settings, self.tickets, lambda: calendar)
        flows = LiveFlows.from_config(REPO / "config", catalog_loader(default_prompts_dir(REPO / "config")), environ={})
        self.engine = Engine(flows, self.calls, on_record=self.follower.on_ivr_record,
                             channel_seen=self.follower.channel_seen, resume_key=RESUME_KEY)
        self.server = FastAgiServer(header_timeout=2.0)
        self.server.route("ivr", self.engine.handle_call)

    async def session(self, uniqueid: str, channel: str, caller: str, *, keys: str | list[str] = "0",
                      dialed: str = "12345", resume: str = "", stop_at: str = "") -> list[str]:
        """Play Asterisk from 127.0.0.1 (allowed): the environment (``resume``: the third AGI
        argument), then every command answered (GET DATA with ``keys``, or each in turn and then
        0) until the engine closes, or until a command containing ``stop_at`` (Asterisk's side of
        an engine that is gone); the commands it sent, once the engine is done with the session."""
        assert self.server._server
        port = self.server._server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"agi_network_script: ivr\nagi_channel: {channel}\nagi_uniqueid: {uniqueid}\n"
                     f"agi_callerid: {caller}\nagi_arg_1: {dialed}\nagi_arg_2: \nagi_arg_3: {resume}\n\n".encode())
        answers = [] if isinstance(keys, str) else list(keys)
        seen = []
        while line := (await reader.readline()).decode().strip():
            seen.append(line)
            if stop_at and stop_at in line:
                break
            answer = "0"
            if line.startswith("GET DATA"):
                answer = keys if isinstance(keys, str) else answers.pop(0) if answers else "0"
            writer.write(f"200 result={answer}\n".encode())
        writer.close()
        async with asyncio.timeout(5):  # its record is saved
            while self.server.active_calls:
                await asyncio.sleep(0.01)
        return seen

    async def stored(self) -> dict[str, Any]:
        await self.calls.drain()
        record = await self.calls.get_call(CALL["Uniqueid"])
        assert record is not None
        return record


@pytest.fixture
async def bed(redis_url: str, tmp_path: Path) -> AsyncIterator[Bed]:
    b = Bed(redis_url, tmp_path)
    await b.server.start("127.0.0.1", 0)
    b.follower.on_event(CALL)  # AMI: the citizen's call is up
    yield b
    await b.server.stop(grace=1)
    await b.calls.close()
    await b.tickets.close()


async def test_a_forged_environment_after_the_real_one_cannot_replace_the_call_record(
    bed: Bed, caplog: pytest.LogCaptureFixture,
) -> None:
    assert await bed.session(CALL["Uniqueid"], CALL["Channel"], CALL["CallerIDNum"])
    real = await bed.stored()
    assert real["channel"] == CALL["Channel"] and real["confirmed"] is True

    await bed.session(CALL["Uniqueid"], FORGED_CHANNEL, "13800000666", keys="9")  # the attack
    assert await bed.stored() == real
    ticket = bed.follower.tracker.calls[CALL["Linkedid"]].ticket
    assert ticket.ivr.keys == real["keys"] and ticket.caller == CALL["CallerIDNum"]
    assert any("refused" in r.getMessage() and FORGED_CHANNEL in r.getMessage() for r in caplog.records)


async def test_a_forged_environment_before_the_real_one_cannot_keep_the_record(bed: Bed) -> None:
    await bed.session(CALL["Uniqueid"], FORGED_CHANNEL, "13800000666", keys="9")  # first, made up
    forged = await bed.stored()
    assert forged["confirmed"] is False  # AMI shows the call on another channel
    assert bed.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr.flow == ""  # not applied to the ticket

    await bed.session(CALL["Uniqueid"], CALL["Channel"], CALL["CallerIDNum"])  # the real call's own
    real = await bed.stored()
    assert real["channel"] == CALL["Channel"] and real["caller"] == CALL["CallerIDNum"]
    assert bed.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr.flow == real["flow"] != ""


@pytest.mark.parametrize("uniqueid, channel", [
    ("../../etc", "PJSIP/pstn-00000001"), ("1700000000.1\nagi_x", "PJSIP/pstn-00000001"),
    ("1700000000.1", "PJSIP/pstn-1,Queue: vip"), ("1700000000.1", "no-technology"),
])
async def test_an_environment_not_shaped_like_asterisks_is_refused_before_any_flow(
    bed: Bed, uniqueid: str, channel: str,
) -> None:
    assert await bed.session(uniqueid.replace("\n", " "), channel, "13800000666") == []
    await bed.calls.drain()
    assert [k async for k in bed.calls.redis.scan_iter(match=keyspace.call("*"))] == []  # no record at all
    assert bed.server.active_calls == 0


def test_a_record_is_bounded_whatever_the_peer_answered() -> None:
    huge = {"unique_id": "1700000000.1", "caller": "1" * 16_000, "keys": ["9" * 8000] * 1000,
            "variables": {f"v{i}": "x" * 9000 for i in range(500)}, "channel_variables": {f"c{i}": "x" * 9000 for i in range(500)},
            "visits": [{"flow": "f" * 99, "node": "n" * 999, "type": "t" * 99, "at": "a" * 99, "outcome": "o" * 99}] * 5000,
            "route": {"type": "queue"}}
    cut = bounded(huge)
    assert len(json.dumps(cut)) < 64 * 1024
    assert len(cut["caller"]) == MAX_TEXT and len(cut["keys"]) == MAX_ITEMS and len(cut["variables"]) == MAX_ITEMS
    assert cut["route"] == {"type": "queue"} and cut["unique_id"] == "1700000000.1"


@pytest.mark.parametrize("uniqueid", ["1700000000.1", "node-a-1700000000.12", "b1928-tf12009-2", "x" * 150])
def test_asterisks_own_uniqueids_and_an_originates_channel_id_are_identities(uniqueid: str) -> None:
    """A systemname prefix (a cluster node) and an AMI Originate's ChannelId (the benchmarks',
    any tool's) are Asterisk's uniqueids too: only characters and length are its rule."""
    assert identity_problem({"agi_uniqueid": uniqueid, "agi_channel": "Local/12345@from-pstn-00000003;2"}) is None


@pytest.mark.parametrize("uniqueid", ["", "x" * 151, "../../etc", "1700000000.1 agi_x", "1.1,Queue: vip", "1.1\u2028"])
def test_a_uniqueid_that_could_break_a_key_or_a_line_is_no_identity(uniqueid: str) -> None:
    assert identity_problem({"agi_uniqueid": uniqueid, "agi_channel": "PJSIP/pstn-00000001"})


# --- a stand-in engine's resumed session ----------------------------------------------------------


def last_point(commands: list[str]) -> str:
    """The last resume point the engine left (SET VARIABLE IVR_RESUME "...")."""
    return [c for c in commands if c.startswith(f"SET VARIABLE {VARIABLE} ")][-1].split(" ", 3)[3].strip('"')


async def gone_in_level_2(bed: Bed, uniqueid: str = CALL["Uniqueid"]) -> list[str]:
    """The sample line (8000): level 1 answered 1, the engine gone as level 2 plays."""
    return await bed.session(uniqueid, CALL["Channel"], CALL["CallerIDNum"], keys=["1"], dialed="8000",
                             stop_at="sample_menu_l2")


async def resumed(bed: Bed, point: str, keys: str = "0") -> list[str]:
    return await bed.session(CALL["Uniqueid"], CALL["Channel"], CALL["CallerIDNum"], keys=keys, dialed="8000",
                             resume=point)


async def test_a_stand_ins_record_replaces_the_first_sessions_and_the_ticket_shows_one_path(bed: Bed) -> None:
    first = await gone_in_level_2(bed)
    assert (await bed.stored())["hung_up"] is True  # what the first engine wrote as it went

    second = await resumed(bed, last_point(first))
    assert 'GET DATA "ivr12345/sample_menu_l2"' in second[1] and "welcome_12345" not in " ".join(second)
    record = await bed.stored()
    assert record["resumed"] == 1 and record["confirmed"] is True and record["route"]["type"] == "queue"
    assert [(v["node"], v["session"]) for v in record["visits"]] == [
        ("welcome", 0), ("top", 0), ("services", 1), ("agent", 1)]
    ivr = bed.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr
    assert ivr.nodes == ["sample/welcome", "sample/top", "sample/services", "sample/agent"] and ivr.keys == ["1", "0"]


async def test_a_claimed_resume_without_the_engines_signature_is_refused(bed: Bed) -> None:
    body, _, tag = last_point(await gone_in_level_2(bed)).rpartition(":")
    real = await bed.stored()
    other_key = resume_key(b"another-deployment-key-012345678")
    for forged in [f"{body}:{'0' * len(tag)}", sign_resume(other_key, CALL["Uniqueid"], CALL["Channel"], body)]:
        assert await resumed(bed, forged, keys="9") == []  # cut off: no flow
    other_call = await gone_in_level_2(bed, uniqueid="1700000000.4242")  # a genuine point of another call
    assert await resumed(bed, last_point(other_call), keys="9") == []
    assert await bed.stored() == real
    assert bed.follower.tracker.calls[CALL["Linkedid"]].ticket.ivr.keys == real["keys"]


async def test_a_later_session_without_a_resume_cannot_replace_the_stand_ins_record(bed: Bed) -> None:
    await resumed(bed, last_point(await gone_in_level_2(bed)))
    stand_in = await bed.stored()
    await bed.session(CALL["Uniqueid"], CALL["Channel"], CALL["CallerIDNum"], keys="9")  # a fresh session 0
    assert await bed.stored() == stand_in
