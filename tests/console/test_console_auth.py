"""Sign-in machinery on a real Redis, through HTTP: argon2 hashes, session expiry, CSRF on every
write, the sign-in rate limit per user and address, and the ``ivr users`` command."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from console.app import create_app
from console.auth import CSRF_HEADER, SESSION_COOKIE
from console.context import Console
from console.users import User, UserError, check_user, hash_password, verify_password
from ivr.store import keyspace
from ivr.cli import main
from ivr.config import WebSettings, load_config
from tickets.audit import read_audit

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


@pytest.fixture
async def console(redis_url: str, tmp_path: Path) -> AsyncIterator[Console]:
    settings = load_config(REPO / "config").settings
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    web = WebSettings(login_attempts=3, idle_minutes=5, max_hours=1)
    yield Console(redis=client, web=web, settings=lambda: settings, config_dir=REPO / "config",
                  audit_log=tmp_path / "audit.jsonl")
    await client.aclose()


@pytest.fixture
async def http(console: Console) -> AsyncIterator[TestClient]:
    await console.users.add("wang", "supervisor", PASSWORD, agent=None, by="test")
    client = TestClient(TestServer(create_app(console)))
    await client.start_server()
    yield client
    await client.close()


async def sign_in(http: TestClient, password: str = PASSWORD, user: str = "wang", headers: dict[str, str] | None = None) -> int:
    form = await http.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', await form.text())
    assert token
    response = await http.post("/login", data={"user": user, "password": password, "_csrf": token[1], "next": "/"},
                               allow_redirects=False, headers=headers)
    return response.status


def test_passwords_are_argon2_hashes() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    user = User("wang", "admin", None, hashed)
    assert verify_password(user, PASSWORD)
    assert not verify_password(user, PASSWORD + "!")
    assert not verify_password(None, PASSWORD)  # an unknown user, checked against a dummy hash
    with pytest.raises(UserError, match="at least 10"):
        hash_password("short")


def test_users_are_checked_against_the_seats() -> None:
    seats = {"agent1001"}
    check_user("li", "agent", "agent1001", seats)
    for name, role, agent, message in (("Li Si", "admin", None, "must match"), ("li", "root", None, "not one of"),
                                       ("li", "agent", None, "needs --agent"), ("li", "admin", "agent1001", "only an agent"),
                                       ("li", "agent", "agent9", "not an agent")):
        with pytest.raises(UserError, match=message):
            check_user(name, role, agent, seats)


async def test_a_session_ends_when_idle_or_too_old(console: Console) -> None:
    user = await console.users.add("wang", "supervisor", PASSWORD, agent=None, by="test")
    session = await console.sessions.create(user)
    key = keyspace.console_session(session.id)
    assert session.id not in key  # only the digest is stored
    assert 0 < await console.redis.ttl(key) <= 5 * 60  # idle timeout, renewed on use
    assert (await console.sessions.get(session.id)) == session
    assert await console.sessions.get(session.id, now=session.started + 3601) is None  # max_hours
    assert not await console.redis.exists(key)


async def test_every_write_needs_the_csrf_token(http: TestClient) -> None:
    form = await http.get("/login")
    assert (await http.post("/login", data={"user": "wang", "password": PASSWORD})).status == 403  # no token
    assert form.cookies  # the sign-in form's double-submit cookie
    assert await sign_in(http) == 303
    page = await (await http.get("/")).text()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert token
    assert (await http.post("/logout", allow_redirects=False)).status == 403
    assert (await http.post("/logout", headers={CSRF_HEADER: "forged"}, allow_redirects=False)).status == 403
    assert (await http.post("/logout", data={"_csrf": "伪造"}, allow_redirects=False)).status == 403
    assert (await http.get("/whoami")).status == 200  # still signed in
    assert (await http.post("/logout", headers={CSRF_HEADER: token[1]}, allow_redirects=False)).status == 303
    assert (await http.get("/whoami")).status == 401


async def test_cookies_are_httponly_and_strict(http: TestClient) -> None:
    await http.get("/login")
    form = await http.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', await form.text())
    assert token
    response = await http.post("/login", data={"user": "wang", "password": PASSWORD, "_csrf": token[1]},
                               allow_redirects=False)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # web.secure_cookies is off by default (loopback, no TLS)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_sign_in_is_rate_limited_per_user_and_address(http: TestClient, console: Console) -> None:
    for _ in range(3):
        assert await sign_in(http, "wrong password!") == 401
    assert await sign_in(http) == 429  # locked, even with the right password
    assert await sign_in(http, headers={"X-Forwarded-For": "10.0.0.9"}) == 429  # a header changes nothing
    await console.users.add("zhao", "admin", PASSWORD, agent=None, by="test")
    assert await sign_in(http, user="zhao") == 303  # another user from this address is not locked
    refused = [e.reason for e in read_audit(console.audit_log)
               if e.user == "wang@console"]
    assert refused == ["refused: wrong name or password"] * 3 + ["refused: too many failures"] * 2


def test_ivr_users_add_reads_the_password_from_the_environment(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    monkeypatch.setenv("IVR_CONSOLE_PASSWORD", PASSWORD)
    assert main(["--config", str(REPO / "config"), "users", "add", "li", "--role", "agent", "--agent", "agent1002"]) == 0
    assert main(["--config", str(REPO / "config"), "users", "add", "li2", "--role", "agent", "--agent", "nobody"]) == 2
    assert "not an agent" in capsys.readouterr().err
    assert main(["--config", str(REPO / "config"), "users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "li " in listing and "agent1002" in listing and "li2" not in listing and PASSWORD not in listing
    monkeypatch.delenv("IVR_CONSOLE_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(REPO / "config"), "users", "add", "zhou", "--role", "admin", "--password-stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal, no variable, no --password-stdin
    assert main(["--config", str(REPO / "config"), "users", "add", "zhou", "--role", "admin"]) == 2
    assert "no password" in capsys.readouterr().err


def test_the_console_port_comes_from_engine_yaml_or_the_environment() -> None:
    loaded = load_config(REPO / "config", environ={"IVR_WEB_PORT": "9345"})
    assert (loaded.settings.web.host, loaded.settings.web.port) == ("127.0.0.1", 9345)
    assert loaded.origin("web.port") == "environment IVR_WEB_PORT"
    assert load_config(REPO / "config", environ={}).origin("web.port").startswith(str(REPO / "config" / "engine.yaml"))


def test_a_missing_chromium_fails_the_browser_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from testbed import browser

    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(browser.BrowserMissing, match="apt-get install chromium chromium-driver"):
        browser.start_chromium(tmp_path)
    assert not issubclass(browser.BrowserMissing, pytest.skip.Exception)  # an error, never a skip


async def test_a_taken_console_port_is_one_clear_line(console: Console) -> None:
    from console.server import start
    from ivr.config import ConfigError
    from testbed.ports import PortAllocator

    console.web = console.web.model_copy(update={"port": PortAllocator().one()})
    runner = await start(console)
    try:
        with pytest.raises(ConfigError, match=rf"console port 127.0.0.1:{console.web.port} is already in use \(web.port from env"):
            await start(console, origin="environment IVR_WEB_PORT")
    finally:
        await runner.cleanup()


def test_sign_in_redirects_only_within_the_console() -> None:
    from console.views.signin import _safe_next

    assert _safe_next("/tickets?line=12345") == "/tickets?line=12345"
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)", "tickets"):
        assert _safe_next(target) == "/", target


async def test_the_favicon_is_a_real_icon_served_to_anyone(http: TestClient) -> None:
    """Every browser asks for /favicon.ico, signed in or not; it answered 401 (signed out) and 404."""
    for signed_in in (False, True):
        if signed_in:
            assert await sign_in(http) == 303
        response = await http.get("/favicon.ico", allow_redirects=False)
        assert response.status == 200 and response.headers["Content-Type"] == "image/x-icon"
        icon = await response.read()
        assert icon[:4] == b"\x00\x00\x01\x00" and int.from_bytes(icon[4:6], "little") >= 1  # an ICO with an image
    assert '<link rel="icon" href="/favicon.ico">' in await (await http.get("/login")).text()
