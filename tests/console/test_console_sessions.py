"""Sessions and open event streams end with the user they signed in as (issue 17, Low): a
password reset, a removal and re-creation, a role change or signing out end them; a user
holds a bounded number of open streams. Real console, real Redis, real HTTP."""

from __future__ import annotations

import asyncio
import secrets
from typing import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from console.users import UserStore
from ivr.config import WebSettings
from testbed.calls import until
from testbed.console import Account, ConsoleSite, add_user, http_client, sign_in_http

END = 30.0  # s: a guard so a stream that never ends fails the test instead of hanging it


@pytest.fixture
async def users(console: ConsoleSite) -> AsyncIterator[UserStore]:
    client = aioredis.Redis.from_url(console.redis_url, decode_responses=True)
    yield UserStore(client)
    await client.aclose()


def fresh(console: ConsoleSite, role: str) -> Account:
    """A user of its own (these tests change and remove it)."""
    return add_user(console.redis_url, f"{role}-{secrets.token_hex(3)}", role)


async def whoami(http: aiohttp.ClientSession, console: ConsoleSite) -> int:
    async with http.get(console.url + "/whoami", headers={"Accept": "application/json"}) as reply:
        return reply.status


async def test_an_old_cookie_dies_when_the_password_is_reset(console: ConsoleSite, users: UserStore) -> None:
    admin = fresh(console, "admin")
    async with http_client() as http:
        await sign_in_http(http, console, admin)
        assert await whoami(http, console) == 200
        await users.add(admin.name, "admin", "a brand new password", agent=None, by="test")  # ivr users add: reset
        assert await whoami(http, console) == 401


async def test_an_old_cookie_dies_when_the_user_is_removed_and_made_again(console: ConsoleSite, users: UserStore) -> None:
    admin = fresh(console, "admin")
    async with http_client() as http:
        await sign_in_http(http, console, admin)
        await users.remove(admin.name)
        await users.add(admin.name, "admin", admin.password, agent=None, by="test")  # same name, same password
        assert await whoami(http, console) == 401
        async with http.get(console.url + "/audit", headers={"Accept": "text/html"}) as page:
            assert page.url.path == "/login"  # no admin rights left in the old cookie


async def test_signing_out_ends_the_open_wallboard_stream(console: ConsoleSite) -> None:
    supervisor = fresh(console, "supervisor")
    async with http_client() as http:
        csrf = await sign_in_http(http, console, supervisor)
        async with http.get(console.url + "/wallboard/events") as stream:
            assert stream.status == 200
            await stream.content.readuntil(b"\n\n")  # "retry: …"
            assert b"event: snapshot" in await stream.content.readuntil(b"\n\n")  # the board now
            async with http.post(console.url + "/logout", headers={"X-CSRF-Token": csrf}, allow_redirects=False) as out:
                assert out.status == 303
            await asyncio.wait_for(stream.content.read(), END)  # the stream ends
        async with http.get(console.url + "/wallboard/events") as again:
            assert again.status == 401


async def test_a_role_change_ends_the_open_desk_stream(console: ConsoleSite, users: UserStore) -> None:
    supervisor = fresh(console, "supervisor")
    async with http_client() as http:
        await sign_in_http(http, console, supervisor)
        async with http.get(console.url + "/desk/agent1002/events") as stream:
            assert stream.status == 200
            await stream.content.readuntil(b"\n\n")
            assert b"event: desk" in await stream.content.readuntil(b"\n\n")  # streaming: the desk now
            await users.add(supervisor.name, "agent", supervisor.password, agent="agent1001", by="test")
            await asyncio.wait_for(stream.content.read(), END)
        async with http.get(console.url + "/desk/agent1002/events") as again:
            assert again.status == 401


async def test_a_user_holds_a_bounded_number_of_open_streams(console: ConsoleSite) -> None:
    supervisor, limit = fresh(console, "supervisor"), WebSettings().streams_per_user
    async with http_client() as http:
        await sign_in_http(http, console, supervisor)
        opened = [await http.get(console.url + "/wallboard/events") for _ in range(limit)]
        try:
            assert [r.status for r in opened] == [200] * limit
            async with http.get(console.url + "/wallboard/events") as over:
                assert over.status == 429 and "最多同时打开" in await over.text()
            async with http.get(console.url + "/desk/agent1001/events") as desk:
                assert desk.status == 429
        finally:
            for response in opened:
                response.close()

        async def reopens() -> bool:  # once the server has seen the connections close
            async with http.get(console.url + "/wallboard/events") as again:
                return again.status == 200

        assert await until(reopens)
