"""The 推送死信 page in a real Chromium, on a console of its own whose config names webhooks:
an event a dead endpoint never took (parked by a real push worker) is listed for an admin; once
the endpoint is up, the admin's 重新投递 delivers it once under the same event id and the row is
gone; 删除 needs a reason and is audited; a forged form (no CSRF token, an endpoint not
configured, a malformed id) changes nothing; an agent gets 403 for the page and the forms."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from ivr.store import keyspace
from testbed.browser import Browser
from testbed.wording import english_words
from testbed.calls import until
from testbed.console import ConsoleSite, StandaloneConsole, http_client, private_config, sign_in_http
from testbed.ports import PortAllocator
from testbed.processes import start_redis
from tests.ivr.test_push import FAST, Receiver, Workers, hook, stream_event
from tests.tickets.test_dead_letters import start_on

REPO = Path(__file__).resolve().parents[2]
PORTS = PortAllocator()
CITY_PORT, TAX_PORT = PORTS.one(), PORTS.one()  # nothing listens until a test starts a receiver
URLS = {"city": f"http://127.0.0.1:{CITY_PORT}/hook", "tax": f"http://127.0.0.1:{TAX_PORT}/hook"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A console of its own (its own Redis) whose tickets.yaml names the webhooks ``city`` and ``tax``."""
    root = tmp_path_factory.mktemp("dead-letters")
    config = private_config(REPO / "config", root)
    text = (config / "tickets.yaml").read_text()
    hooks = "".join(f"\n    {name}: {{url: '{url}', timeout: 2}}" for name, url in URLS.items())
    (config / "tickets.yaml").write_text(text.replace("  webhooks: {}", f"  webhooks:{hooks}"))
    port = PORTS.one()
    redis_proc = start_redis(port, root)
    server = StandaloneConsole(config, f"redis://127.0.0.1:{port}/0", root / "console")
    (root / "console").mkdir()
    try:
        yield server.start()
    finally:
        server.stop()
        redis_proc.kill()
        redis_proc.wait()


@pytest.fixture
async def redis(console: ConsoleSite) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(console.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def workers(console: ConsoleSite) -> AsyncIterator[Workers]:
    running = Workers(console.redis_url)
    yield running
    await running.stop_all()


async def parked(redis: aioredis.Redis, workers: Workers, linkedid: str) -> str:
    """An event streamed and parked by a real push worker for both (dead) endpoints; its event id."""
    event_id = await stream_event(redis, linkedid)
    if not workers.running:
        workers.start("engine-1", {name: hook(url) for name, url in URLS.items()}, FAST)
    for endpoint in URLS:
        await until(lambda endpoint=endpoint: _has(redis, endpoint, event_id), timeout=10)
    return event_id


async def _has(redis: aioredis.Redis, endpoint: str, event_id: str) -> bool:
    return any(f'"id": "{event_id}"' in raw for raw in await redis.lrange(keyspace.push_dead(endpoint), 0, -1))


def rows(browser: Browser) -> list[tuple[str, str]]:
    return [(r.get_attribute("data-endpoint"), r.get_attribute("data-id")) for r in browser.all("#push-dead tbody tr")]


async def test_an_admin_replays_a_dead_letter_once_the_endpoint_is_up_and_drops_one_with_a_reason(
    browser: Browser, console: ConsoleSite, redis: aioredis.Redis, workers: Workers,
) -> None:
    event_id = await parked(redis, workers, "1764552600.00071")
    admin = console.account("admin")

    def listed() -> list[tuple[str, str]]:
        browser.sign_in(admin).open("/push/dead")
        return rows(browser)

    assert await asyncio.to_thread(listed) == [("city", event_id), ("tax", event_id)]
    page = await asyncio.to_thread(browser.text, "#push-dead")
    assert "20261201-12345-00071" in page and "受理" in page and "13800138000" not in page
    shown = await asyncio.to_thread(browser.staff_text, "#push-dead")  # the push error: Mandarin, its English a detail
    names = ["city", "tax", "opened"]  # the endpoints, and the event as its id names it for the receiver (…:opened)
    assert not english_words(shown, names) and browser.all('#push-dead [lang="en"]'), shown

    city = Receiver()
    await start_on(city, CITY_PORT)  # the department's endpoint is back
    try:
        def replay_city() -> str:
            row = browser.find(f'#push-dead tr[data-endpoint="city"][data-id="{event_id}"]')
            browser.submit("", row.find_element("css selector", ".push-replay button"))
            return browser.text("#push-dead-message")

        assert "已重新排队投递" in await asyncio.to_thread(replay_city)
        await until(lambda: city.delivered_ids() == [event_id], timeout=10)
        await until(lambda: _gone(redis, "city", event_id), timeout=10)
        assert city.attempts == [event_id]  # once, with the event id it always had
    finally:
        await city.close()
    assert await asyncio.to_thread(lambda: rows(browser.open("/push/dead"))) == [("tax", event_id)]

    def drop_tax(reason: str) -> str:
        row = browser.find(f'#push-dead tr[data-endpoint="tax"][data-id="{event_id}"]')
        row.find_element("css selector", ".push-drop input[name=reason]").send_keys(reason)
        browser.submit("", row.find_element("css selector", ".push-drop button"))
        return browser.text("body")

    assert "已删除该死信" in await asyncio.to_thread(drop_tax, "税务接口改用新地址，已人工补录")
    assert await redis.llen(keyspace.push_dead("tax")) == 0
    audit = [(e.user, e.command, e.what, e.reason) for e in console.audit() if e.command.startswith("push dead")]
    assert audit[-2:] == [(f"{admin.name}@console", "push dead replay", {"endpoint": "city", "id": event_id}, ""),
                          (f"{admin.name}@console", "push dead drop", {"endpoint": "tax", "id": event_id},
                           "税务接口改用新地址，已人工补录")]


async def _gone(redis: aioredis.Redis, endpoint: str, event_id: str) -> bool:
    return not await _has(redis, endpoint, event_id)


FORGED = [
    ("replay", {"endpoint": "city", "id": "{id}"}, False, 403, "CSRF"),
    ("drop", {"endpoint": "city", "id": "{id}", "reason": "  "}, True, 400, "删除死信须填写原因"),
    ("replay", {"endpoint": "archive", "id": "{id}"}, True, 400, "没有推送接口"),
    ("drop", {"endpoint": "city", "id": "{id}\r\nX-Evil: 1", "reason": "x"}, True, 400, "事件编号"),
    ("replay", {"endpoint": "city", "id": "{id}", "extra": "1"}, True, 400, "未知字段"),
]


async def test_forged_forms_and_an_agent_change_nothing_and_are_audited(
    console: ConsoleSite, redis: aioredis.Redis, workers: Workers,
) -> None:
    event_id = await parked(redis, workers, "1764552600.00072")
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("admin"))
        for operation, form, with_csrf, status, message in FORGED:
            data = {k: v.format(id=event_id) for k, v in form.items()} | ({"_csrf": csrf} if with_csrf else {})
            async with http.post(f"{console.url}/push/dead/{operation}", data=data, allow_redirects=False) as reply:
                assert (reply.status, message in await reply.text()) == (status, True), form
            assert await _has(redis, "city", event_id), form
            entry = console.audit()[-1]
            assert entry.command == ("push dead " + operation if with_csrf else "console refused"), form
    async with http_client() as http:
        agent = console.account("agent")
        csrf = await sign_in_http(http, console, agent)
        async with http.get(f"{console.url}/push/dead") as reply:
            assert reply.status == 403
        async with http.post(f"{console.url}/push/dead/drop", allow_redirects=False,
                             data={"endpoint": "city", "id": event_id, "reason": "x", "_csrf": csrf}) as reply:
            assert reply.status == 403
        assert await _has(redis, "city", event_id)
        entry = console.audit()[-1]
        assert (entry.user, entry.command, entry.what["path"]) == (f"{agent.name}@console", "console refused", "/push/dead/drop")
