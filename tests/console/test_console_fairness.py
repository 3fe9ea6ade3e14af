"""The 排队顺序 page (/stats/order): one day's order inversions across nodes and the seat collisions,
counted from the tickets in the console's real Redis (queues/order.py). A console of a two-node
cluster shows the inversions per queue; the one-node console says none can exist (not a 0); only
supervisors and admins open it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest

from testbed.configs import with_two_nodes
from testbed.console import ConsoleSite, StandaloneConsole, http_client, private_config, run_sync, sign_in_http
from tickets.model import QueueVisit, SeatCollision, Ticket
from tickets.store import TicketStore

REPO = Path(__file__).resolve().parents[2]
DAY = (datetime.now() - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0).astimezone()
SEAT = "agent1003"  # no other console test gives it a collision


def answered(n: int, node: str, queued: float, connected: float) -> Ticket:
    joined, at = DAY + timedelta(seconds=queued), DAY + timedelta(seconds=connected)
    visit = QueueVisit("expert-hrss", joined.isoformat(), at.isoformat(), "answered", connected - queued, SEAT)
    return Ticket(linkedid=f"{node}-1795000000.{n}", line="12345", caller=f"1370000000{n}", received=joined.isoformat(),
                  queued=joined.isoformat(), answered=at.isoformat(), ended=(at + timedelta(seconds=9)).isoformat(),
                  queue="expert-hrss", agent=SEAT, queue_visits=[visit], disposition="answered", priority=0)


def seed(redis_url: str, spool: Path) -> None:
    """Caller 1 waits on ast-b from 0 s; caller 2 (ast-a, 7.5 s) is answered at 20 s, after its
    node's first offer to the seat was turned away; caller 1 at 40 s."""
    second = answered(2, "ast-a", 7.5, 20)
    second.seat_collisions = [SeatCollision(SEAT, (DAY + timedelta(seconds=19)).isoformat())]

    async def write() -> None:
        store = TicketStore(redis_url, spool, "fairness-seed", retention_days=30, caller_key=b"fairness-test-key")
        try:
            for t in (answered(1, "ast-b", 0, 40), second):
                await store.write(t, "closed")
            await store.drain()
        finally:
            await store.close()
    run_sync(write)


@pytest.fixture(scope="module")
def cluster_console(console_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    """A console whose config has a cluster section of two nodes, on the same Redis."""
    config = private_config(REPO / "config", tmp_path_factory.mktemp("fairness-deployment"))
    with_two_nodes(config)
    seed(console_redis, tmp_path_factory.mktemp("fairness-spool"))
    server = StandaloneConsole(config, console_redis, tmp_path_factory.mktemp("fairness-console"))
    site = server.start()
    yield site
    server.stop()


async def page(site: ConsoleSite, role: str, query: str = f"?day={DAY.date().isoformat()}") -> tuple[int, str]:
    async with http_client() as http:
        await sign_in_http(http, site, site.account(role))
        async with http.get(site.url + "/stats/order" + query) as reply:
            return reply.status, await reply.text()


def cells(html: str, row: str) -> list[str]:
    found = re.search(rf"<tr {row}>(.*?)</tr>", html, re.S)
    assert found, row
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", found[1], re.S)]


async def test_on_a_cluster_the_day_shows_each_queue_s_inversions_and_each_seat_s_collisions(
    cluster_console: ConsoleSite,
) -> None:
    status, html = await page(cluster_console, "supervisor")
    assert status == 200
    assert cells(html, 'data-queue="expert-hrss"') == [DAY.date().isoformat(), "expert-hrss", "2", "1", "50.0%", "7.5 秒"]
    assert cells(html, f'data-seat="{SEAT}"') == [SEAT, "1"]
    assert "order-single-node" not in html
    status, html = await page(cluster_console, "admin", f"?day={(DAY - timedelta(days=1)).date().isoformat()}")
    assert status == 200 and "当日无接通" in html and "当日无冲突" in html


async def test_on_one_node_it_says_no_inversion_can_exist_and_still_counts_collisions(
    cluster_console: ConsoleSite, console: ConsoleSite,
) -> None:
    status, html = await page(console, "supervisor")  # the same tickets, read by a console without a cluster
    assert status == 200
    assert 'id="order-single-node"' in html and "order-inversions" not in html
    assert cells(html, f'data-seat="{SEAT}"') == [SEAT, "1"]


@pytest.mark.parametrize("role, query, expected", [("agent", "", 403), ("supervisor", "?day=yesterday", 400)])
async def test_agents_cannot_open_it_and_a_bad_day_is_refused(
    console: ConsoleSite, role: str, query: str, expected: int,
) -> None:
    status, _html = await page(console, role, query)
    assert status == expected
