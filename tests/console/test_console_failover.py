"""The console while Redis fails over (docs/cluster.md, Redis): a master that refuses writes until
Sentinel has reattached its replicas (NOREPLICAS) gives a signed-in user a 503 to try again, never
a 500, and the session is there once the refusal ends."""

from __future__ import annotations

import re
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from console.app import create_app
from console.context import Console, console_redis
from ivr.config import WebSettings, load_config

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


async def test_a_master_refusing_writes_mid_failover_gives_503_and_the_session_survives(redis_url: str,
                                                                                       tmp_path: Path) -> None:
    web = WebSettings()
    c = Console(redis=console_redis(redis_url, web), web=web, settings=lambda: load_config(REPO / "config").settings,
                config_dir=REPO / "config", audit_log=tmp_path / "audit.jsonl")
    await c.users.add("wang", "supervisor", PASSWORD, agent=None, by="test")
    http = TestClient(TestServer(create_app(c)))
    await http.start_server()
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        token = re.search(r'name="_csrf" value="([^"]+)"', await (await http.get("/login")).text())
        assert token
        signed_in = await http.post("/login", data={"user": "wang", "password": PASSWORD, "_csrf": token[1], "next": "/"},
                                    allow_redirects=False)
        assert signed_in.status == 303
        await admin.config_set("min-replicas-to-write", "1")  # no replica attached: every write is refused
        refused = await http.get("/", allow_redirects=False)
        assert refused.status == 503 and "稍后重试" in await refused.text()
        await admin.config_set("min-replicas-to-write", "0")  # the replicas are back
        page = await http.get("/", allow_redirects=False)
        assert page.status == 200
    finally:
        await admin.aclose()
        await http.close()
        await c.redis.aclose()
