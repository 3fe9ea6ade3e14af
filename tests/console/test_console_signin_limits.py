"""Sign-in attacks from outside, over real HTTP on a real Redis (issue 17, findings 5–7): parallel
guesses, lockout as a weapon behind a reverse proxy, floods of anonymous sign-ins and requests.
The password checks are counted by wrapping the argon2 hasher the console uses."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

import console.users
from console.app import create_app
from console.context import Console, console_redis
from ivr.config import WebSettings, load_config
from tickets.audit import read_audit

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
PROXY = "127.0.0.1/32"  # the test client's address: it plays the reverse proxy


class CountingHasher:
    """The console's argon2 hasher, counting checks and how many ran at once."""

    def __init__(self, real: Any):
        self.real, self.checks, self.running, self.most = real, 0, 0, 0
        self._lock = threading.Lock()

    def verify(self, hashed: str, password: str) -> bool:
        with self._lock:
            self.checks += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return bool(self.real.verify(hashed, password))
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher(console.users._hasher)
    monkeypatch.setattr(console.users, "_hasher", counting)
    return counting


Make = Callable[..., Any]


@pytest.fixture
async def make(redis_url: str, tmp_path: Path) -> AsyncIterator[Make]:
    """A console as ``ivr serve`` makes one (its own bounded Redis pool), with these web settings,
    served on a real socket; returns (console, client)."""
    settings = load_config(REPO / "config").settings
    made: list[tuple[Console, TestClient]] = []

    async def build(**web: Any) -> tuple[Console, TestClient]:
        options = WebSettings(**web)
        c = Console(redis=console_redis(redis_url, options), web=options, settings=lambda: settings,
                    config_dir=REPO / "config", audit_log=tmp_path / f"audit-{len(made)}.jsonl")
        await c.users.add("wang", "supervisor", PASSWORD, agent=None, by="test")
        client = TestClient(TestServer(create_app(c)))
        await client.start_server()
        made.append((c, client))
        return c, client

    yield build
    for c, client in made:
        await client.close()
        await c.redis.aclose()


async def form_token(http: TestClient) -> str:
    token = re.search(r'name="_csrf" value="([^"]+)"', await (await http.get("/login")).text())
    assert token
    return token[1]


async def sign_in(http: TestClient, token: str, user: str = "wang", password: str = PASSWORD,
                  via: str | None = None) -> Any:
    """POST /login; ``via``: the client address the proxy puts in X-Forwarded-For."""
    headers = {"X-Forwarded-For": via} if via else None
    response = await http.post("/login", data={"user": user, "password": password, "_csrf": token, "next": "/"},
                               allow_redirects=False, headers=headers)
    await response.read()
    return response


async def test_40_parallel_wrong_passwords_get_at_most_the_configured_checks(make: Make, hasher: CountingHasher) -> None:
    c, http = await make(login_attempts=5)
    token = await form_token(http)
    replies = await asyncio.gather(*(sign_in(http, token, password=f"guess number {i}") for i in range(40)))
    statuses = Counter(r.status for r in replies)
    assert hasher.checks <= 5, statuses  # counted first: no check beyond the budget
    assert statuses[429] >= 35 and set(statuses) <= {401, 429, 503}, statuses
    assert await sign_in(http, token) and (await sign_in(http, token)).status == 429  # still locked, right password
    wang = [e.reason for e in read_audit(c.audit_log) if e.user == "wang@console"]
    assert len(wang) == 42 and wang.count("refused: too many failures") >= 37  # every attempt is on the log


async def test_200_parallel_sign_ins_get_429_or_503_never_500_and_all_are_audited(make: Make, hasher: CountingHasher) -> None:
    c, http = await make(login_address_attempts=20, redis_connections=4)
    token = await form_token(http)
    replies = await asyncio.gather(*(sign_in(http, token, user=f"user{i}", password="a wrong password")
                                     for i in range(200)))
    statuses = Counter(r.status for r in replies)
    # refused before any password check: 429 (over the address budget) or 503 (no Redis connection free
    # at that instant, which a loaded machine makes more likely); at most the budget reaches a check
    assert set(statuses) <= {401, 429, 503} and statuses[429] + statuses[503] >= 180, statuses
    assert all(r.headers.get("Retry-After") for r in replies if r.status == 503)
    assert hasher.checks <= 20
    lines = [e for e in read_audit(c.audit_log) if e.command == "console sign-in"]
    assert len(lines) == 200 and {e.what["address"] for e in lines} == {"127.0.0.1"}


async def test_200_parallel_requests_share_a_bounded_pool_and_the_engine_keeps_its_redis(make: Make, redis_url: str) -> None:
    from queues.store import SeatStore

    c, http = await make(redis_connections=4, redis_wait=10)
    engine = SeatStore(redis_url)  # the engine's own client, a pool of its own
    named: list[int] = []

    async def console_connections() -> None:
        while len(named) < 20:
            clients = await engine.redis.client_list()
            named.append(sum(1 for x in clients if x.get("name") == "ivr-console"))

    async def request(i: int) -> int:  # a made-up session: each one is a Redis lookup
        response = await http.get("/tickets", cookies={"ivr_session": f"forged-{i}"}, headers={"Accept": "application/json"})
        await response.read()
        return response.status

    try:
        watch = asyncio.ensure_future(console_connections())
        statuses = Counter(await asyncio.gather(*(request(i) for i in range(200))))
        await watch
        assert statuses == {401: 200}, statuses
        assert max(named) <= 4  # the console never held more than its pool
        assert await engine.redis.ping()
    finally:
        await engine.redis.aclose()


async def test_a_guesser_behind_the_proxy_locks_only_itself_out(make: Make) -> None:
    c, http = await make(login_attempts=3, trusted_proxies=(PROXY,))
    token = await form_token(http)
    for _ in range(4):
        await sign_in(http, token, password="wrong password!", via="198.51.100.66")
    assert (await sign_in(http, token, via="198.51.100.66")).status == 429
    assert (await sign_in(http, token, via="203.0.113.7")).status == 303  # the real user, from elsewhere
    http.session.cookie_jar.clear()
    token = await form_token(http)
    # a client's own X-Forwarded-For is read only up to the first address the proxy did not vouch for
    assert (await sign_in(http, token, via="203.0.113.7, 198.51.100.66")).status == 429
    addresses = [e.what["address"] for e in read_audit(c.audit_log)]
    assert set(addresses) == {"198.51.100.66", "203.0.113.7"}  # the clients, never the proxy


async def test_without_trusted_proxies_a_forwarded_header_changes_nothing(make: Make) -> None:
    c, http = await make(login_attempts=2)
    token = await form_token(http)
    for n in range(2):
        await sign_in(http, token, password="wrong password!", via=f"198.51.100.{n}")
    assert (await sign_in(http, token, via="203.0.113.7")).status == 429
    assert {e.what["address"] for e in read_audit(c.audit_log)} == {"127.0.0.1"}


async def test_many_addresses_guessing_one_user_cannot_lock_out_its_usual_desk(make: Make, hasher: CountingHasher) -> None:
    c, http = await make(login_attempts=3, login_user_attempts=6, trusted_proxies=(PROXY,))
    token = await form_token(http)
    assert (await sign_in(http, token, via="203.0.113.7")).status == 303  # the usual desk
    http.session.cookie_jar.clear()
    token = await form_token(http)
    guesses = [(await sign_in(http, token, password="wrong password!", via=f"198.51.100.{n}")).status
               for n in range(1, 11)]
    assert guesses == [401] * 6 + [429] * 4  # the user's budget is spent for strangers ...
    assert hasher.checks == 1 + 6
    assert (await sign_in(http, token, via="198.51.100.99")).status == 429  # ... even with the right password
    assert (await sign_in(http, token, via="203.0.113.7")).status == 303  # its usual desk still gets in


async def test_a_flood_of_sign_ins_gets_a_bounded_share_of_password_checks(make: Make, hasher: CountingHasher) -> None:
    c, http = await make(login_workers=2, login_queue=2, login_address_attempts=1000, login_global_attempts=1000,
                         trusted_proxies=(PROXY,))
    token = await form_token(http)
    replies = await asyncio.gather(*(sign_in(http, token, user=f"user{i}", password="a wrong password",
                                             via=f"198.51.100.{i}") for i in range(60)))
    statuses = Counter(r.status for r in replies)
    assert hasher.most <= 2, hasher.most  # never more checks at once than the pool's workers
    assert set(statuses) == {401, 503} and statuses[503] >= 1, statuses
    assert all(r.headers["Retry-After"] == "5" for r in replies if r.status == 503)
    reasons = Counter(e.reason for e in read_audit(c.audit_log))
    assert reasons == {"refused: wrong name or password": statuses[401], "refused: busy": statuses[503]}


def test_the_client_address_is_the_rightmost_hop_no_trusted_proxy_added() -> None:
    from aiohttp.test_utils import make_mocked_request

    from console.clientaddr import client_address, networks

    def address(peer: str, forwarded: str | None, trusted: tuple[str, ...]) -> str:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        request = make_mocked_request("POST", "/login", headers=headers)
        request._transport_peername = (peer, 40000)  # type: ignore[attr-defined]
        return client_address(request.clone(remote=peer), networks(trusted))

    lan = ("10.0.0.0/8", "::1/128")
    assert address("10.0.0.2", "1.2.3.4, 198.51.100.66, 10.0.0.3", lan) == "198.51.100.66"
    assert address("10.0.0.2", "10.0.0.9, 10.0.0.3", lan) == "10.0.0.9"  # all trusted: the leftmost
    assert address("10.0.0.2", "198.51.100.66, not-an-address", lan) == "10.0.0.2"
    assert address("10.0.0.2", None, lan) == "10.0.0.2"
    assert address("198.51.100.5", "10.0.0.9", lan) == "198.51.100.5"  # the peer is no proxy: header ignored
    assert address("::1", "2001:db8::7", lan) == "2001:db8::7"
    assert address("10.0.0.2", "1.2.3.4", ()) == "10.0.0.2"
    with pytest.raises(ValueError):
        WebSettings(trusted_proxies=("the proxy",))
    from_env = load_config(REPO / "config", environ={"IVR_WEB_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"})
    assert from_env.settings.web.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")


async def test_a_request_that_finds_no_free_redis_connection_gets_503_with_retry_after(make: Make) -> None:
    c, http = await make(redis_connections=2, redis_wait=0.2)
    pool, held = c.redis.connection_pool, []
    while True:  # every connection the pool has left (the live pages' subscription holds one), busy elsewhere
        try:
            held.append(await pool.get_connection())
        except RedisConnectionError:
            break
    try:
        reply = await http.get("/tickets", cookies={"ivr_session": "forged"}, headers={"Accept": "application/json"})
        assert reply.status == 503 and reply.headers["Retry-After"] == "5" and "服务繁忙" in await reply.text()
    finally:
        for connection in held:
            await pool.release(connection)
    reply = await http.get("/tickets", cookies={"ivr_session": "forged"}, headers={"Accept": "application/json"})
    assert reply.status == 401  # a connection free again: served as usual


async def test_a_sign_in_that_finds_no_free_redis_connection_gets_503_and_is_audited(make: Make) -> None:
    c, http = await make(redis_connections=2, redis_wait=0.2)
    token = await form_token(http)
    pool, held = c.redis.connection_pool, []
    while True:  # every connection the pool has left, busy elsewhere (a flood of sign-ins)
        try:
            held.append(await pool.get_connection())
        except RedisConnectionError:
            break
    try:
        reply = await sign_in(http, token, user="li", password="a wrong password")
        assert reply.status == 503 and reply.headers["Retry-After"] == "5"
    finally:
        for connection in held:
            await pool.release(connection)
    lines = [e for e in read_audit(c.audit_log) if e.command == "console sign-in" and e.user == "li@console"]
    assert [e.reason for e in lines] == ["refused: busy"]  # refused like the others, and on the log
