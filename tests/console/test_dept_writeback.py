"""Departments write back through the signed API of the real console server (aiohttp, real
Redis): a signed update moves a ticket to 办理中 and then 已办结 (timeline, status, the push event
delivered signed to a real receiver); forged, out-of-window and replayed updates are refused and
audited; a repeat is idempotent; an illegal transition and another department's ticket are
refused; an extension moves the deadline; an overdue ticket is flagged in the list and /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiohttp import web

from ivr.config import PushSettings, Webhook, load_config, webhook_secret_variable
from testbed.calls import until
from testbed.console import (ConsoleSite, StandaloneConsole, http_client, post_dept_event, private_config, run_sync,
                             sign_in_http)
from tickets.model import Deadline, Ticket
from tickets.push import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from tickets.store import TicketStore
from tickets.webhooks import PushWorker

REPO = Path(__file__).resolve().parents[2]
KEY = "housing-key-7fQ2xLr9TmWc4Zp"
WATER_KEY = "water-key-Hb6nVq3sKe8RyJd"
HOUSING, WATER = "市住建局", "市水务局"


@pytest.fixture(scope="module")
def site(console_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A console of its own: its config names two departments, their keys in files outside it."""
    root = tmp_path_factory.mktemp("dept")
    config = private_config(REPO / "config", root)
    (root / "housing.key").write_text(KEY + "\n")
    (root / "water.key").write_text(WATER_KEY)
    text = (config / "tickets.yaml").read_text()
    assert "\n  departments: {}\n" in text
    (config / "tickets.yaml").write_text(text.replace("\n  departments: {}\n", (
        f"\n  departments:\n    housing: {{title: {HOUSING}, key_file: {root / 'housing.key'}}}\n"
        f"    water: {{title: {WATER}, key_file: {root / 'water.key'}}}\n")))
    server = StandaloneConsole(config, console_redis, root / "console")
    yield server.start()
    server.stop()


def write(site: ConsoleSite, tmp: Path, *tickets: Ticket) -> list[str]:
    async def go() -> list[str]:
        store = TicketStore(site.redis_url, tmp, "dept-test", retention_days=30, caller_key=b"dept-test-caller-key")
        try:
            for t in tickets:
                await store.write(t, "closed")
            await store.drain()
            return [(await store.get(t.linkedid)).number for t in tickets]  # type: ignore[union-attr]
        finally:
            await store.close()
    return run_sync(go)


def stored(site: ConsoleSite, number: str) -> Ticket:
    async def go() -> Ticket:
        store = TicketStore(site.redis_url, Path("/nonexistent"), "read", retention_days=30)
        try:
            found = await store.by_number(number)
            assert found is not None
            return found
        finally:
            await store.close()
    return run_sync(go)


def a_ticket(linkedid: str, department: str = HOUSING, due: str | None = None) -> Ticket:
    now = datetime.now().astimezone()
    received = max(now - timedelta(minutes=3), now.replace(hour=0, minute=0, second=0, microsecond=0))
    return Ticket(linkedid=linkedid, line="12345", caller="13900000077", received=received.isoformat(),
                  disposition="answered", department=department, request_type="complaint",
                  deadline=Deadline(due=due or (now.date() + timedelta(days=14)).isoformat(), rule="7 working days"))


def post(site: ConsoleSite, number: str, event: dict[str, Any], *, dept: str = "housing", key: str = KEY,
         stamp: int | None = None, signature: str | None = None, raw: bytes | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    return post_dept_event(site.url, number, event, dept=dept, key=key, stamp=stamp, signature=signature, raw=raw)


def refusals(site: ConsoleSite) -> list[tuple[str, str, str, str]]:
    return [(e.user, e.what.get("number", ""), e.what.get("peer", ""), e.reason) for e in site.audit()
            if e.command == "dept write-back refused"]


class Receiver:
    """A department's webhook endpoint: keeps the workflow events whose signature checks."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.runner = web.AppRunner(web.Application())

    async def start(self) -> str:
        self.runner.app.router.add_post("/hook", self.handle)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return "http://%s:%d/hook" % self.runner.addresses[0][:2]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(KEY, body, request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]):
            return web.Response(status=401)
        self.bodies.append(json.loads(body))
        return web.Response(text="ok")


def delivered_workflow(site: ConsoleSite, config: Path, number: str, count: int) -> list[dict[str, Any]]:
    """Run the real push worker with an endpoint that wants workflow events; the ones of ``number``."""
    async def go() -> list[dict[str, Any]]:
        receiver = Receiver()
        url = await receiver.start()
        settings = load_config(config).settings
        tickets = settings.tickets.model_copy(update={
            "webhooks": {"housing": Webhook(url=url, events=("workflow",))}, "push": PushSettings(backoff=0.05)})
        worker = PushWorker(site.redis_url, settings.model_copy(update={"tickets": tickets}), "test:1:1", poll=0.2,
                            environ={webhook_secret_variable("housing"): KEY})
        task = asyncio.create_task(worker.run())
        try:
            mine = lambda: [b for b in receiver.bodies if b["number"] == number]  # noqa: E731
            await until(lambda: len(mine()) >= count, 10)
            return mine()
        finally:
            await worker.stop()
            await task
            await receiver.runner.cleanup()
    return run_sync(go)


def test_signed_updates_move_a_ticket_to_handling_then_closed_once_each_and_push_them(
        site: ConsoleSite, tmp_path: Path) -> None:
    [number] = write(site, tmp_path, a_ticket("wb.1"))
    status, answer, _ = post(site, number, {"id": "h-1", "event": "handling"})
    assert (status, answer["status"], answer["status_label"]) == (200, "handling", "办理中")
    assert stored(site, number).status == "handling"
    closing = {"id": "c-1", "event": "closed", "text": "已协调物业修复电梯，并电话告知市民。"}
    status, answer, _ = post(site, number, closing)
    assert (status, answer["status"]) == (200, "closed")

    again, repeat, headers = post(site, number, closing)  # the department's retry: same answer, no change
    assert (again, repeat, headers.get("X-Ivr-Repeat")) == (200, answer, "1")
    t = stored(site, number)
    steps = [(e.event, e.detail) for e in t.timeline if e.event.startswith("dept ")]
    assert steps == [("dept handling", f"{HOUSING}：开始办理"), ("dept closed", f"{HOUSING}：答复：{closing['text']}")]
    assert t.status == "closed" and not t.case_open

    pushed = delivered_workflow(site, Path(load_site_config(site)), number, 2)
    assert [(b["event"].split(":")[0], b["ticket"]["status"]) for b in pushed] == [("workflow", "handling"),
                                                                                  ("workflow", "closed")]
    assert pushed[1]["ticket"]["caller"] == "139****0077"  # masked for an endpoint without unmasked_caller
    applied = [e for e in site.audit() if e.command == "dept write-back" and e.what.get("number") == number]
    assert [(e.user, e.what["event"], e.what["status"]) for e in applied] == [
        ("dept:housing", "handling", "handling"), ("dept:housing", "closed", "closed")]


def load_site_config(site: ConsoleSite) -> str:
    """The private config/ of the module's console (beside its audit log's directory)."""
    return str(site.audit_log.parent.parent / "config")


def test_forged_out_of_window_replayed_and_unknown_updates_are_refused_audited_and_counted(
        site: ConsoleSite, tmp_path: Path) -> None:
    [number] = write(site, tmp_path, a_ticket("wb.2"))
    handling = {"id": "h-2", "event": "handling"}
    assert post(site, number, handling, key="not-the-housing-key-at-all")[0] == 401  # forged
    assert post(site, number, handling, signature="sha256=" + "0" * 64)[0] == 401
    assert post(site, number, handling, stamp=int(time.time()) - 400)[0] == 401  # an old capture replayed
    assert post(site, number, handling, dept="police", key=KEY)[0] == 401  # no such department
    assert post(site, number, handling, dept="water", key=KEY)[0] == 401  # another department's name, wrong key
    assert stored(site, number).status == "accepted"
    assert post(site, number, handling)[0] == 200
    replay = post(site, number, {"id": "h-2", "event": "closed", "text": "同一编号，另一内容"})
    assert replay[:2] == (409, {"error": "event id reused with a different body"})
    assert post(site, number, {"id": "x-3", "event": "handling", "by": "me"})[0] == 400  # unknown field
    assert post(site, number, {}, raw=b"\xff" * (17 * 1024))[0] == 413
    assert stored(site, number).status == "handling"

    reasons = [(user, reason) for user, n, peer, reason in refusals(site) if n == number and peer == "127.0.0.1"]
    assert reasons == [("dept:housing", "bad signature"), ("dept:housing", "bad signature"),
                       ("dept:housing", "timestamp outside window"), ("dept:unknown", "unknown department"),
                       ("dept:water", "bad signature"), ("dept:housing", "event id reused with a different body"),
                       ("dept:housing", "invalid body: by: Extra inputs are not permitted"),
                       ("dept:housing", "body too large")]
    metrics = metrics_text(site)
    assert re.search(r'^ivr_dept_refused_total\{department="housing",reason="bad signature"\} [1-9]', metrics, re.M)
    assert re.search(r'^ivr_dept_refused_total\{department="unknown",reason="unknown department"\} [1-9]', metrics, re.M)


def test_illegal_transitions_and_other_departments_tickets_are_refused(site: ConsoleSite, tmp_path: Path) -> None:
    mine, theirs = write(site, tmp_path, a_ticket("wb.3"), a_ticket("wb.4", department=WATER))
    assert post(site, mine, {"id": "c-3", "event": "closed", "text": "已答复"})[0] == 200
    assert post(site, mine, {"id": "h-3", "event": "handling"})[:2] == (409, {"error": "handling not allowed after closed"})
    assert post(site, theirs, {"id": "h-4", "event": "handling"})[:2] == (
        403, {"error": "ticket not assigned to this department"})
    assert post(site, "20991231-12345-99999", {"id": "h-5", "event": "handling"})[0] == 404
    assert (stored(site, mine).status, stored(site, theirs).status) == ("closed", "accepted")
    assert post(site, theirs, {"id": "h-4", "event": "handling"}, dept="water", key=WATER_KEY)[0] == 200  # id per department


def test_an_extension_moves_the_deadline_within_its_bounds(site: ConsoleSite, tmp_path: Path) -> None:
    from ivr.core.calendar import load_calendar

    cal = load_calendar()
    today = datetime.now().astimezone().date()
    due = cal.add_working_days(today, 3)
    [number] = write(site, tmp_path, a_ticket("wb.5", due=due.isoformat()))
    later = cal.add_working_days(due, 5)
    status, answer, _ = post(site, number, {"id": "e-1", "event": "extend", "due": later.isoformat(), "text": "需现场勘查"})
    assert (status, answer["due"], answer["status"]) == (200, later.isoformat(), "accepted")
    assert stored(site, number).deadline.due == later.isoformat()  # type: ignore[union-attr]
    status, answer, _ = post(site, number, {"id": "e-2", "event": "extend", "due": due.isoformat(), "text": "x"})
    assert (status, answer) == (409, {"error": "due must be later than the current deadline"})


def test_an_overdue_ticket_is_flagged_in_the_list_the_page_and_the_kpis(site: ConsoleSite, tmp_path: Path) -> None:
    yesterday = (datetime.now().astimezone().date() - timedelta(days=1)).isoformat()
    before = metric_value(site, "ivr_tickets_overdue")
    late, closed = write(site, tmp_path, a_ticket("wb.6", due=yesterday), a_ticket("wb.7", due=yesterday))
    assert post(site, closed, {"id": "c-7", "event": "closed", "text": "已答复"})[0] == 200

    async def pages() -> tuple[str, str, str]:
        async with http_client() as http:
            await sign_in_http(http, site, site.account("supervisor"))
            async with http.get(site.url + "/tickets") as listing, http.get(f"{site.url}/tickets/{late}") as page, \
                    http.get(site.url + "/tickets?overdue=1") as only:
                return await listing.text(), await page.text(), await only.text()

    listing, page, only = run_sync(pages)
    assert re.findall(r'<a href="/tickets/([0-9-]+)">', only) == [late] and "超期未办结" in only
    rows = {m[0]: m[1] for m in re.findall(r'<a href="/tickets/([0-9-]+)">.*?<td class="status">(.*?)</td>', listing, re.S)}
    assert "超期" in rows[late] and "已受理" in rows[late]
    assert rows[closed] == "已办结"  # closed: never overdue
    assert re.search(r'id="status">已受理 <strong class="overdue" id="overdue">超期</strong>', page)
    assert metric_value(site, "ivr_tickets_overdue") == before + 1
    assert 0 < metric_value(site, "ivr_tickets_closed_on_time_ratio") < 1  # wb.7 closed late


def metrics_text(site: ConsoleSite) -> str:
    async def go() -> str:
        async with http_client() as http:
            await sign_in_http(http, site, site.account("admin"))
            async with http.get(site.url + "/metrics") as reply:
                assert reply.status == 200
                return await reply.text()
    return run_sync(go)


def metric_value(site: ConsoleSite, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics_text(site), re.M)
    assert found, name
    return float(found[1])



def test_the_same_event_sent_five_times_at_once_changes_the_ticket_once(site: ConsoleSite, tmp_path: Path) -> None:
    [number] = write(site, tmp_path, a_ticket("wb.8"))
    body = json.dumps({"id": "d-8", "event": "dispatched", "unit": "瑶海区住建局"}, ensure_ascii=False).encode()

    async def burst() -> list[int]:
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", "X-Ivr-Department": "housing", TIMESTAMP_HEADER: str(stamp),
                   SIGNATURE_HEADER: sign(KEY, stamp, body)}
        async with http_client() as http:
            async def one() -> int:
                async with http.post(f"{site.url}/api/dept/v1/tickets/{number}/events", data=body, headers=headers) as r:
                    return r.status
            return list(await asyncio.gather(*(one() for _ in range(5))))

    statuses = run_sync(burst)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses  # 409: in progress on another request
    t = stored(site, number)
    assert [e.detail for e in t.timeline if e.event == "dept dispatched"] == [f"{HOUSING}：派至 瑶海区住建局"]
    assert t.status == "dispatched"


def test_a_flood_of_forged_requests_is_cut_after_the_budget_with_one_audit_line(site: ConsoleSite, tmp_path: Path) -> None:
    """Last in the module: it spends 127.0.0.1's refusal budget (and gives it back at the end)."""
    from ivr.store import keyspace, redis_client
    from tickets.writeback import REFUSALS_PER_MINUTE

    [number] = write(site, tmp_path, a_ticket("wb.9"))
    peer_key = keyspace.dept_refused_peer("127.0.0.1")

    async def reset() -> None:
        client = redis_client(site.redis_url)
        await client.delete(peer_key)
        await client.aclose()

    run_sync(reset)
    lines_before = len(site.audit())
    try:
        statuses = [post(site, number, {"id": f"f-{i}", "event": "handling"}, key="forged-key-0123456789abc")[0]
                    for i in range(REFUSALS_PER_MINUTE + 10)]
        assert statuses == [401] * (REFUSALS_PER_MINUTE + 1) + [429] * 9
        assert post(site, number, {"id": "ok-9", "event": "handling"})[0] == 429  # the peer is cut, signed or not
        new = [e for e in site.audit()[lines_before:] if e.what.get("number") == number]
        assert len(new) == REFUSALS_PER_MINUTE + 2
        assert [e.reason for e in new].count(f"flood: over {REFUSALS_PER_MINUTE} refusals this minute, "
                                             "further requests refused unaudited") == 1
        assert re.search(r'^ivr_dept_refused_total\{department="unknown",reason="flood"\} 10\.0$', metrics_text(site), re.M)
    finally:
        run_sync(reset)
    assert post(site, number, {"id": "ok-9", "event": "handling"})[0] == 200
