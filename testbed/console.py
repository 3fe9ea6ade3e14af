"""The web console for browser tests: accounts per role, the audit log, and a console of its
own (no Asterisk) on a real Redis for the pages that need no calls.

Two kinds of :class:`ConsoleSite`, used the same way by tests:

* :func:`bed_site`: the console the bed's engine serves (``ivr serve`` on ``state.web_port``),
  for pages that need calls (tests/integration/);
* :class:`StandaloneConsole`: :func:`console.app.create_app` in a thread with its own event
  loop, on a copy of ``config/`` and a Redis of its own (tests/console/).

Selenium's calls block, so the console never shares the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Coroutine, TypeVar

from ivr.config import WebSettings
from tickets.audit import AuditEntry, read_audit
from tickets.push import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")
ROLE_SEATS = {"agent": "agent1001"}  # the seat an agent account is bound to unless told otherwise


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    role: str
    agent: str | None = None


def private_config(config_dir: Path, root: Path) -> Path:
    """A copy of ``config_dir`` in ``root`` (what a console publishes there stays there), with
    ``prompts/`` beside it shared; returns the copy's ``config/``."""
    shutil.copytree(config_dir, root / "config", ignore=shutil.ignore_patterns(".history"))
    (root / "prompts").symlink_to(Path(config_dir).resolve().parent / "prompts")
    return root / "config"


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync or async code (in a thread with its own loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def add_user(redis_url: str, name: str, role: str, agent: str | None = None, password: str | None = None) -> Account:
    """A console user in that Redis (as ``ivr users add`` makes one), with a random password."""
    from console.users import UserStore
    from ivr.store import redis_client

    password = password or secrets.token_urlsafe(12)

    async def add() -> None:
        client = redis_client(redis_url)
        try:
            await UserStore(client).add(name, role, password, agent=agent, by="test")  # type: ignore[arg-type]
        finally:
            await client.aclose()

    run_sync(add)
    return Account(name, password, role, agent)


def user_exists(redis_url: str, name: str) -> bool:
    from console.users import UserStore
    from ivr.store import redis_client

    async def get() -> bool:
        client = redis_client(redis_url)
        try:
            return await UserStore(client).get(name) is not None
        finally:
            await client.aclose()

    return run_sync(get)


@dataclass
class ConsoleSite:
    url: str  # http://127.0.0.1:PORT
    redis_url: str
    audit_log: Path
    metrics_token: str = ""  # IVR_METRICS_TOKEN of the engine serving it ("" : none set)
    _accounts: dict[tuple[str, str | None], Account] = field(default_factory=dict)

    def account(self, role: str, agent: str | None = None) -> Account:
        """One user per role (and seat), made on first use: ``site.account("admin")``; made again
        if Redis lost it (a test that restarts the bed's Redis, which keeps nothing on disk)."""
        agent = agent or ROLE_SEATS.get(role)
        key = (role, agent)
        known = self._accounts.get(key)
        if known is None:
            name = f"{role}-{agent}" if agent else f"{role}-{secrets.token_hex(3)}"
            self._accounts[key] = add_user(self.redis_url, name, role, agent)
        elif not user_exists(self.redis_url, known.name):
            self._accounts[key] = add_user(self.redis_url, known.name, role, agent, known.password)
        return self._accounts[key]

    def audit(self) -> list[AuditEntry]:
        return read_audit(self.audit_log)


def metric(console: "ConsoleSite", sample: str) -> float:
    """One sample of the engine's /metrics (Prometheus text format, no personal data), read as
    Prometheus does: with the engine's bearer token."""
    import urllib.request

    request = urllib.request.Request(console.url + "/metrics", headers={"Authorization": f"Bearer {console.metrics_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(sample + " ")]
    return float(values[0]) if values else -1.0


def http_client() -> "aiohttp.ClientSession":
    """An HTTP client that keeps the console's cookies as a browser does (also for 127.0.0.1)."""
    import aiohttp

    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in_http(http: "aiohttp.ClientSession", site: ConsoleSite, account: Account) -> str:
    """Sign ``http`` in through the sign-in form, as a browser does; returns the session's CSRF
    token (for the writes a page's forms and scripts make)."""
    import re

    async with http.get(site.url + "/login") as form:
        token = re.search(r'name="_csrf" value="([^"]+)"', await form.text())
    assert token, "no sign-in form"
    async with http.post(site.url + "/login", allow_redirects=False, data={
            "user": account.name, "password": account.password, "_csrf": token[1], "next": "/"}) as reply:
        assert reply.status == 303, f"sign-in refused: {reply.status}"
    async with http.get(site.url + "/") as page:
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', await page.text())
    assert csrf, "no CSRF token on the home page"
    return csrf[1]


# Characters that end a line for str.splitlines() (and NUL, a control): none of them may split
# an audit line or hide the lines after it (issue 17, finding 2)
LINE_BREAKERS = ("x\u2028y", "x\u2029y", "x\u0085y", "x\ry", "x\x00y", "x\x1cy")


async def admin_audit_page(site: ConsoleSite) -> str:
    """The admin's /audit page, signed in afresh (that sign-in is the log's newest line)."""
    async with http_client() as http:
        await sign_in_http(http, site, site.account("admin"))
        async with http.get(site.url + "/audit") as page:
            assert page.status == 200, page.status
            return await page.text()


def shows_every_line(site: ConsoleSite, page: str) -> None:
    """The page counts every line of the file, and shows the newest (after anything hostile)."""
    import re

    total = re.search(r"共 (\d+) 条", page)
    assert total and int(total[1]) == site.audit_log.read_bytes().count(b"\n") == len(site.audit()), \
        (total and total[1], site.audit_log.read_bytes().count(b"\n"))
    assert f"{site.account('admin').name}@console" in page


def bed_site(state: Any) -> ConsoleSite:
    """The console of a bed's engine (``state``: :class:`testbed.state.BedState`)."""
    return ConsoleSite(f"http://127.0.0.1:{state.web_port}", state.redis_url,
                       Path(state.dir) / "state" / "audit" / "unmasked.jsonl", state.metrics_token)


def post_dept_event(url: str, number: str, event: dict[str, Any], *, dept: str, key: str, stamp: int | None = None,
                    signature: str | None = None, raw: bytes | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A department's write-back as its system sends it to the console at ``url``: the JSON body
    signed with ``key`` (``signature``/``stamp``/``raw`` forge or replay one); status, body, headers."""
    body = raw if raw is not None else json.dumps(event, ensure_ascii=False).encode()
    stamp = int(time.time()) if stamp is None else stamp
    headers = {"Content-Type": "application/json", "X-Ivr-Department": dept, TIMESTAMP_HEADER: str(stamp),
               SIGNATURE_HEADER: signature or sign(key, stamp, body)}
    request = urllib.request.Request(f"{url}/api/dept/v1/tickets/{number}/events", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


class StandaloneConsole:
    """The console without an engine: live flows compiled from ``config_dir``, reloads in-process."""

    def __init__(self, config_dir: Path, redis_url: str, workdir: Path, web: WebSettings | None = None):
        from testbed.ports import PortAllocator

        self.config_dir, self.redis_url, self.workdir = config_dir, redis_url, workdir
        self.web = (web or WebSettings()).model_copy(update={"port": PortAllocator().one()})
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="console", daemon=True)
        self._stop: Callable[[], Coroutine[Any, Any, None]] | None = None

    def start(self) -> ConsoleSite:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return ConsoleSite(f"http://127.0.0.1:{self.web.port}", self.redis_url, self.workdir / "audit.jsonl")

    async def _start(self) -> None:
        from console.context import Console, console_redis
        from console.server import start
        from ivr.hot_reload import LiveFlows, catalog_loader, default_prompts_dir
        from tickets.store import TicketStore

        flows = LiveFlows.from_config(self.config_dir, catalog_loader(default_prompts_dir(self.config_dir)))
        client = console_redis(self.redis_url, self.web)  # as `ivr serve` makes it
        # as the engine's store: a caller key (IVR_CALLER_KEY) and the tickets' retention, since the
        # console writes tickets too (the desk, 质检) and a write trims the indexes to the retention
        tickets = TicketStore(self.redis_url, self.workdir / "spool", "console-test",
                              retention_days=flows.current.settings.tickets.retention_days,
                              caller_key=b"standalone-console-caller-key")

        async def reload() -> Any:
            return await asyncio.to_thread(flows.reload)

        console = Console(redis=client, web=self.web, settings=lambda: flows.current.settings,
                          config_dir=self.config_dir, audit_log=self.workdir / "audit.jsonl",
                          flows=flows, tickets=tickets, reload=reload)
        runner = await start(console)

        async def stop() -> None:
            await runner.cleanup()
            await client.aclose()
            await tickets.close()

        self._stop = stop

    def stop(self) -> None:
        if self._stop is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def json_get(http: "aiohttp.ClientSession", site: ConsoleSite, path: str) -> Any:
    async with http.get(site.url + path) as reply:
        assert reply.status == 200, (path, reply.status)
        return await reply.json()


async def board_until(site: ConsoleSite, check: Callable[[Any], bool], timeout: float = 30) -> Any:
    """The wallboard (``/wallboard.json``, as a supervisor) once ``check`` holds for it."""
    from testbed.calls import until

    async with http_client() as http:
        await sign_in_http(http, site, site.account("supervisor"))

        last: list[Any] = [None]

        async def shown() -> Any:
            last[0] = board = await json_get(http, site, "/wallboard.json")
            return board if check(board) else None
        try:
            return await until(shown, timeout)
        except AssertionError:
            raise AssertionError(f"{site.url}: the wallboard stayed {last[0]}") from None
