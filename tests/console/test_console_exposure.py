"""What the console shows to whom (issue 17, Low): /metrics only to Prometheus' bearer token or
a signed-in admin; the desk's ``?m=`` shows only the console's own fixed messages."""

from __future__ import annotations

import html

import pytest

from console.metrics import TOKEN_VARIABLE
from testbed.console import ConsoleSite, http_client, sign_in_http

TOKEN = "a-metrics-token-of-32-characters!!"


async def metrics_status(console: ConsoleSite, headers: dict[str, str] | None = None, role: str | None = None) -> int:
    async with http_client() as http:
        if role:
            await sign_in_http(http, console, console.account(role))
        async with http.get(console.url + "/metrics", headers=headers) as reply:
            body = await reply.text()
            assert reply.status != 200 or "# HELP ivr_push_backlog" in body
            return reply.status


async def test_metrics_are_not_public(console: ConsoleSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    assert await metrics_status(console) == 401
    assert await metrics_status(console, role="supervisor") == 401
    assert await metrics_status(console, role="admin") == 200  # an admin in the browser
    assert await metrics_status(console, {"Authorization": "Bearer "}) == 401  # no token set: none matches


async def test_prometheus_reads_metrics_with_the_bearer_token(console: ConsoleSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)  # the console runs in this process: it reads the variable now
    assert await metrics_status(console, {"Authorization": f"Bearer {TOKEN}"}) == 200
    for wrong in (f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"):
        assert await metrics_status(console, {"Authorization": wrong}) == 401, wrong


async def test_the_desk_shows_no_text_from_the_link(console: ConsoleSite) -> None:
    planted = "系统通知：您的账号已过期，请拨打 400-000-0000 重新激活"
    async with http_client() as http:
        await sign_in_http(http, console, console.account("agent"))
        async with http.get(console.url + "/desk/agent1001", params={"m": planted}) as page:
            text = html.unescape(await page.text())
        assert page.status == 200 and planted not in text and '<p id="desk-message" class="ok" hidden>' in text
        async with http.get(console.url + "/desk/agent1001", params={"m": "ticket"}) as page:
            assert "工单已保存。" in await page.text()  # the console's own message, by its code
