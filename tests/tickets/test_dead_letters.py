"""Dead letters of the webhook push, end to end on a real redis-server with real push workers and
real aiohttp receivers on loopback, operated through `ivr push dead` as an operator types it:
an event that a dead endpoint never took is parked; once the endpoint is up, a replay delivers it
once under the same event id (the other endpoints get nothing more) and the list empties; a
replay to an endpoint still down replaces its letter instead of doubling it; a drop needs a
reason, and both are in the audit log with the OS user."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from ivr import cli
from ivr.store import keyspace
from testbed.calls import until
from testbed.ports import PortAllocator
from tests.ivr.test_push import FAST, Receiver, Workers, hook, stream_event
from tickets.audit import read_audit

REPO = Path(__file__).resolve().parents[2]
LINKEDID = "1764552600.00042"
EVENT_ID = f"{LINKEDID}:opened"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Workers]:
    """Push workers as engines run them; stopped before the receivers close."""
    running = Workers(redis_url)
    yield running
    await running.stop_all()


def config_with(tmp_path: Path, urls: dict[str, str]) -> Path:
    """A copy of config/ whose tickets.yaml names these webhooks (the CLI reads only that)."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config, ignore=shutil.ignore_patterns(".history"))
    hooks = "".join(f"\n    {name}: {{url: '{url}', timeout: 2}}" for name, url in urls.items())
    text = (config / "tickets.yaml").read_text()
    assert "  webhooks: {}" in text
    (config / "tickets.yaml").write_text(text.replace("  webhooks: {}", f"  webhooks:{hooks}"))
    return config


async def ivr_push(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    """`ivr --config CONFIG push dead ...`, in a thread (the command runs its own event loop)."""
    code = await asyncio.to_thread(cli.main, ["--config", str(config), "push", "dead", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def letters(redis: aioredis.Redis, endpoint: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in await redis.lrange(keyspace.push_dead(endpoint), 0, -1)]


async def test_a_dead_endpoint_s_event_is_listed_replayed_once_with_its_event_id_and_a_dropped_one_is_audited(
    redis_url: str, redis: aioredis.Redis, workers: Workers, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IVR_AUDIT_LOG", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    ports = PortAllocator()
    city_port, closings_port = ports.one(), ports.one()
    tax = await Receiver().start()  # up throughout
    city = Receiver()  # comes up later, on the port the worker was told
    urls = {"city": f"http://127.0.0.1:{city_port}/hook", "tax": tax.url, "closings": f"http://127.0.0.1:{closings_port}/hook"}
    config = config_with(tmp_path, urls)
    try:
        await stream_event(redis, LINKEDID)
        workers.start("engine-1", {name: hook(url) for name, url in urls.items()}, FAST)
        await until(lambda: redis.llen(keyspace.push_dead("city")), timeout=10)
        await until(lambda: redis.llen(keyspace.push_dead("closings")), timeout=10)
        assert tax.delivered_ids() == [EVENT_ID]
        original = (await letters(redis, "closings"))[0]["entry"]

        code, out, _err = await ivr_push(capsys, config, "list")
        assert code == 0, out
        rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
        assert sorted(rows) == ["city", "closings"] and out.splitlines()[-1].startswith("2 dead letters")
        number = "20261201-12345-00042"
        assert rows["city"][1:5] == [EVENT_ID, number, "opened", str(FAST.max_tries)] and "Connect" in out
        code, out, _err = await ivr_push(capsys, config, "show", "city", EVENT_ID)
        shown = json.loads(out)
        assert (code, shown["endpoint"], shown["id"], shown["number"], shown["tries"]) == (0, "city", EVENT_ID, number, 3)
        assert "13800138000" not in out  # no caller in a letter

        # the endpoint comes up; the replay goes to it alone, under the same event id, once
        await start_on(city, city_port)
        code, out, _err = await ivr_push(capsys, config, "replay", "city", EVENT_ID)
        assert code == 0 and "queued again for city" in out
        await until(lambda: city.delivered_ids() == [EVENT_ID], timeout=10)
        await until(lambda: _empty(redis, "city"), timeout=10)
        assert city.attempts == [EVENT_ID] and city.delivered[0]["id"] == EVENT_ID
        assert city.delivered[0]["number"] == number
        await until(lambda: _caught_up(redis, "closings"), timeout=10)
        assert [x["entry"] for x in await letters(redis, "closings")] == [original]  # city's copy was not for it
        code, out, err = await ivr_push(capsys, config, "replay", "city", EVENT_ID)
        assert code == 1 and "no dead letter" in err  # delivered: nothing left to replay

        # a replay to an endpoint still down: retried, parked again, one letter (not two);
        # the other endpoints are not posted again
        await ivr_push(capsys, config, "replay", "closings", EVENT_ID)
        await until(lambda: _caught_up(redis, "closings"), timeout=10)
        again = await letters(redis, "closings")
        assert len(again) == 1 and again[0]["entry"] != original  # the letter of the failed replay, in place
        assert tax.attempts == [EVENT_ID] and city.attempts == [EVENT_ID]

        # drop: a reason is required; then it is gone and audited with the OS user
        code, _out, err = await ivr_push(capsys, config, "drop", "closings", EVENT_ID, "--reason", "  ")
        assert code == 2 and "--reason" in err and await redis.llen(keyspace.push_dead("closings")) == 1
        code, out, _err = await ivr_push(capsys, config, "drop", "closings", EVENT_ID, "--reason", "档案局接口已停用")
        assert code == 0 and await redis.llen(keyspace.push_dead("closings")) == 0
        code, out, _err = await ivr_push(capsys, config, "list")
        assert out.strip() == "0 dead letters (city, tax, closings)"
        audit = read_audit(tmp_path / "state" / "audit" / "unmasked.jsonl")
        assert [(e.command, e.what, e.reason, e.user) for e in audit] == [
            ("push dead replay", {"endpoint": "city", "id": EVENT_ID}, "", getpass.getuser()),
            ("push dead replay", {"endpoint": "city", "id": EVENT_ID}, "", getpass.getuser()),
            ("push dead replay", {"endpoint": "closings", "id": EVENT_ID}, "", getpass.getuser()),
            ("push dead drop", {"endpoint": "closings", "id": EVENT_ID}, "档案局接口已停用", getpass.getuser())]
    finally:
        await city.close()
        await tax.close()


async def start_on(receiver: Receiver, port: int) -> None:
    """Start ``receiver`` on that port: the endpoint the worker was told about comes up."""
    receiver.runner.app.router.add_post("/hook", receiver.handle)
    await receiver.runner.setup()
    await web.TCPSite(receiver.runner, "127.0.0.1", port).start()


async def _empty(redis: aioredis.Redis, endpoint: str) -> bool:
    return await redis.llen(keyspace.push_dead(endpoint)) == 0


async def _caught_up(redis: aioredis.Redis, endpoint: str) -> bool:
    """The endpoint's group has read and acknowledged the stream's last entry (delivered, skipped or parked)."""
    groups = {g["name"]: g for g in await redis.xinfo_groups(keyspace.TICKET_EVENTS)}
    group = groups[keyspace.push_group(endpoint)]
    return int(group["pending"]) == 0 and group["last-delivered-id"] == (await redis.xrevrange(keyspace.TICKET_EVENTS, count=1))[0][0]


@pytest.mark.parametrize("argv, message", [
    (("show", "nowhere", EVENT_ID), "no webhook endpoint 'nowhere'"),
    (("replay", "city", "1764552600.1:opened\nX"), "bad event id"),
    (("drop", "city", "1764552600.1;rm -rf:opened", "--reason", "x"), "bad event id"),
    (("list", "--endpoint", "tax"), "no webhook endpoint 'tax'"),
])
async def test_an_unknown_endpoint_or_a_malformed_event_id_is_refused_before_redis_is_asked(
    argv: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", f"redis://127.0.0.1:{PortAllocator().one()}/0")  # nothing listens
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IVR_AUDIT_LOG", raising=False)
    config = config_with(tmp_path, {"city": "http://127.0.0.1:9/hook"})
    code, _out, err = await ivr_push(capsys, config, *argv)
    assert code == 2 and message in err and "does not answer" not in err
    assert not (tmp_path / "state" / "audit" / "unmasked.jsonl").exists()
