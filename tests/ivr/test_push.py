"""The push worker against a real redis-server and real aiohttp receivers on loopback:
signed, retried, dead-lettered, never twice to one endpoint (several workers, stops, kills)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from ivr.store import keyspace
from ivr.config import ConfigError, PushSettings, Settings, TicketSettings, Webhook
from tickets.webhooks import PushWorker
from testbed.calls import until
from testbed.ports import PortAllocator
from tickets.model import Ticket
from ivr.config import webhook_secret_variable
from tickets.push import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

KEY = "dept-key-for-tests"
ENDPOINTS = ("city", "tax", "closings")
ENVIRON = {webhook_secret_variable(name): KEY for name in ENDPOINTS}
FAST = PushSettings(max_tries=3, backoff=0.05, max_backoff=0.2)
CALLER = "13800138000"




@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


class Receiver:
    """A department endpoint: checks each signature, answers ``statuses`` in turn (then 200);
    the first ``slow`` requests wait for :attr:`release` before answering."""

    def __init__(self, statuses: Sequence[int] = (), slow: int = 0, refusal: str = "busy"):
        self.statuses, self.slow, self.refusal = list(statuses), slow, refusal
        self.release = asyncio.Event()
        self.attempts: list[str] = []  # event ids of every signed POST, answered or not
        self.delivered: list[dict[str, Any]] = []  # bodies answered 2xx
        self.forged = 0
        self.runner = web.AppRunner(web.Application())
        self.url = ""

    async def start(self) -> "Receiver":
        self.runner.app.router.add_post("/hook", self.handle)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"
        return self

    async def handle(self, request: web.Request) -> web.Response:
        body, headers = await request.read(), request.headers
        if not verify_signature(KEY, body, headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")):
            self.forged += 1
            return web.Response(status=401, text="bad signature")
        n = len(self.attempts)
        self.attempts.append(headers[EVENT_ID_HEADER])
        if n < self.slow:
            await self.release.wait()
        status = self.statuses[n] if n < len(self.statuses) else 200
        if status == 200:
            self.delivered.append(json.loads(body))
        return web.Response(status=status, text=self.refusal if status >= 300 else "ok")

    def delivered_ids(self) -> list[str]:
        return [body["id"] for body in self.delivered]

    async def close(self) -> None:
        self.release.set()
        await self.runner.cleanup()


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        await receiver.close()


async def receiver(made: list[Receiver], statuses: Sequence[int] = (), slow: int = 0, refusal: str = "busy") -> Receiver:
    made.append(await Receiver(statuses, slow, refusal).start())
    return made[-1]


class Workers:
    """Push workers running as tasks, as engines would; whatever is left is stopped at the end."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.running: list[tuple[PushWorker, asyncio.Task[None]]] = []

    def start(self, consumer: str, webhooks: dict[str, Webhook], push: PushSettings = FAST,
              **options: float) -> tuple[PushWorker, asyncio.Task[None]]:
        settings = Settings(tickets=TicketSettings(webhooks=webhooks, push=push))
        options = {"claim_idle": 5.0, "poll": 0.2, **options}
        worker = PushWorker(self.redis_url, settings, consumer, environ=ENVIRON, **options)
        self.running.append((worker, asyncio.create_task(worker.run())))
        return self.running[-1]

    async def stop_all(self) -> None:
        for worker, task in self.running:
            if not task.done():
                await worker.stop(grace=1.0)
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def workers(redis_url: str, receivers: list[Receiver]) -> AsyncIterator[Workers]:
    """Stopped before the receivers close (their last POSTs still find them)."""
    w = Workers(redis_url)
    yield w
    await w.stop_all()


def hook(url: str, **options: Any) -> Webhook:
    return Webhook(url=url, timeout=options.pop("timeout", 2.0), **options)


async def stream_event(redis: aioredis.Redis, linkedid: str, kind: str = "opened", line: str = "12345") -> str:
    """A ticket event as the ticket repository streams it; returns its event id."""
    ticket = Ticket(linkedid=linkedid, line=line, caller=CALLER, received="2026-12-01T09:30:00+08:00")
    await redis.xadd(keyspace.TICKET_EVENTS, {"event": kind, "linkedid": linkedid, "line": line,
                                              "number": f"20261201-{line}-{linkedid[-5:]}",
                                              "ticket": json.dumps(ticket.to_json(), ensure_ascii=False)})
    return f"{linkedid}:{kind}"


async def pending(redis: aioredis.Redis, endpoint: str) -> int:
    return int((await redis.xpending(keyspace.TICKET_EVENTS, keyspace.push_group(endpoint)))["pending"])


async def settled(redis: aioredis.Redis, endpoint: str, count: int, timeout: float = 10.0) -> None:
    """Wait until ``count`` events are recorded done for ``endpoint`` and none is pending."""
    async def done() -> bool:
        return await redis.zcard(keyspace.push_done(endpoint)) == count and await pending(redis, endpoint) == 0
    await until(done, timeout=timeout)


async def consumers(redis: aioredis.Redis, endpoint: str) -> list[str]:
    return [c["name"] for c in await redis.xinfo_consumers(keyspace.TICKET_EVENTS, keyspace.push_group(endpoint))]


def test_given_an_endpoint_without_a_key_when_the_worker_is_built_then_start_is_refused_naming_the_variable() -> None:
    settings = Settings(tickets=TicketSettings(webhooks={"city-affairs": Webhook(url="http://127.0.0.1:9/")}))
    with pytest.raises(ConfigError, match="IVR_WEBHOOK_SECRET_CITY_AFFAIRS"):
        PushWorker("redis://127.0.0.1:9/0", settings, "engine-1", environ={})


async def test_given_a_receiver_checking_signatures_when_an_event_was_streamed_before_start_then_it_gets_one_signed_post(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers)
    event_id = await stream_event(redis, "1764552600.00001")
    workers.start("engine-1", {"city": hook(city.url)})
    await settled(redis, "city", 1)
    assert city.forged == 0
    assert city.attempts == [event_id] and city.delivered_ids() == [event_id]
    body = city.delivered[0]
    assert body["event"] == "opened" and body["number"] == body["ticket"]["number"] == "20261201-12345-00001"
    assert body["ticket"]["caller"] == "138****8000"
    assert await redis.zscore(keyspace.push_done("city"), event_id) is not None


async def test_given_a_receiver_answering_500_twice_when_it_then_answers_200_then_it_gets_the_event_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers, statuses=[500, 500])
    event_id = await stream_event(redis, "1764552600.00002")
    workers.start("engine-1", {"city": hook(city.url, unmasked_caller=True, plain_http=True)})
    await settled(redis, "city", 1)
    assert city.attempts == [event_id] * 3
    assert city.delivered_ids() == [event_id]
    assert city.delivered[0]["ticket"]["caller"] == CALLER
    assert await redis.hlen(keyspace.push_tries("city")) == 0
    assert await redis.llen(keyspace.push_dead("city")) == 0


async def test_given_a_receiver_down_for_the_whole_retry_window_then_the_event_is_dead_lettered_and_not_done(
        redis: aioredis.Redis, workers: Workers) -> None:
    event_id = await stream_event(redis, "1764552600.00003")
    workers.start("engine-1", {"city": hook(f"http://127.0.0.1:{PortAllocator().one()}/hook")})
    letters = await until(lambda: redis.lrange(keyspace.push_dead("city"), 0, -1), timeout=10)
    letter = json.loads(letters[0])
    assert len(letters) == 1 and letter["id"] == event_id and letter["tries"] == FAST.max_tries
    assert "Connect" in letter["error"] and CALLER not in letters[0]
    assert await pending(redis, "city") == 0  # acknowledged: not tried again
    assert await redis.zcard(keyspace.push_done("city")) == 0
    assert await redis.hlen(keyspace.push_tries("city")) == 0


async def test_given_an_event_streamed_twice_when_both_entries_are_read_then_the_receiver_gets_it_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers)
    event_id = await stream_event(redis, "1764552600.00012")
    await stream_event(redis, "1764552600.00012")  # the same phase again, as a replay could
    later = await stream_event(redis, "1764552600.00013")
    workers.start("engine-1", {"city": hook(city.url)})
    await settled(redis, "city", 2)
    assert city.attempts == [event_id, later]


async def test_given_two_workers_in_one_group_when_events_stream_then_each_endpoint_gets_each_event_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city, tax = await receiver(receivers), await receiver(receivers)
    webhooks = {"city": hook(city.url), "tax": hook(tax.url)}
    workers.start("engine-1", webhooks)
    workers.start("engine-2", webhooks)
    ids = [await stream_event(redis, f"1764552600.{n:05d}") for n in range(30)]
    await settled(redis, "city", 30)
    await settled(redis, "tax", 30)
    assert sorted(city.attempts) == sorted(tax.attempts) == sorted(ids)
    assert sorted(city.delivered_ids()) == sorted(ids)
    assert sorted(await consumers(redis, "city")) == ["engine-1", "engine-2"]


async def test_given_a_retrying_worker_when_its_backoff_outlasts_the_claim_idle_then_the_other_worker_leaves_it(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers, statuses=[500, 500])
    webhooks = {"city": hook(city.url, timeout=0.5)}
    slow_retries = PushSettings(max_tries=3, backoff=1.0, max_backoff=1.0)
    event_id = await stream_event(redis, "1764552600.00004")
    for name in ("engine-1", "engine-2"):
        workers.start(name, webhooks, push=slow_retries, claim_idle=0.6)
    await until(lambda: city.attempts)  # read, so the group exists
    owners: set[str] = set()

    async def delivered_while_watching_owner() -> bool:
        for entry in await redis.xpending_range(keyspace.TICKET_EVENTS, keyspace.push_group("city"), "-", "+", 10):
            owners.add(str(entry["consumer"]))
        return bool(city.delivered)

    await until(delivered_while_watching_owner, timeout=10, interval=0.05)
    await settled(redis, "city", 1)
    assert len(owners) == 1
    assert city.attempts == [event_id] * 3 and city.delivered_ids() == [event_id]


async def test_given_a_worker_stopped_during_a_slow_post_when_a_new_worker_starts_then_each_event_arrives_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers, slow=1)
    first = await stream_event(redis, "1764552600.00005")
    old, old_task = workers.start("engine-1", {"city": hook(city.url)})
    await until(lambda: city.attempts)
    stopping = asyncio.create_task(old.stop(grace=5.0))
    await asyncio.sleep(0)  # the stop has begun while the POST is in flight
    city.release.set()
    await stopping
    assert old_task.done()
    await settled(redis, "city", 1)  # recorded before the worker exited
    assert await consumers(redis, "city") == []  # it held nothing, so it left the group
    second = await stream_event(redis, "1764552600.00006")
    workers.start("engine-1b", {"city": hook(city.url)})
    await settled(redis, "city", 2)
    assert city.attempts == [first, second] and city.delivered_ids() == [first, second]


async def test_given_a_worker_stopped_while_waiting_to_retry_then_the_next_worker_takes_the_event_at_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers, statuses=[500])
    event_id = await stream_event(redis, "1764552600.00007")
    long_wait = PushSettings(max_tries=3, backoff=60.0, max_backoff=60.0)
    old, _ = workers.start("engine-1", {"city": hook(city.url)}, push=long_wait, claim_idle=60.0)
    await until(lambda: redis.hget(keyspace.push_tries("city"), event_id))
    await asyncio.wait_for(old.stop(grace=5.0), timeout=1.0)  # nothing in flight: no need for the grace
    workers.start("engine-1b", {"city": hook(city.url)}, push=long_wait, claim_idle=60.0)
    await settled(redis, "city", 1)  # well before the 60 s backoff or claim idle time
    assert city.attempts == [event_id] * 2 and city.delivered_ids() == [event_id]


async def test_given_a_worker_killed_mid_post_when_the_claim_idle_passes_then_another_worker_delivers_it_once(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers, slow=1)  # the killed worker's POST never gets an answer
    event_id = await stream_event(redis, "1764552600.00008")
    webhooks = {"city": hook(city.url, timeout=0.8)}
    killed, killed_task = workers.start("engine-1", webhooks, claim_idle=1.0)
    await until(lambda: city.attempts)
    killed_task.cancel()  # no stop(): as if the process died
    await asyncio.gather(killed_task, return_exceptions=True)
    await killed.redis.aclose()
    workers.start("engine-2", webhooks, claim_idle=1.0, forget_after=0.5)
    await settled(redis, "city", 1)
    assert city.attempts == [event_id] * 2 and city.delivered_ids() == [event_id]

    async def dead_consumer_forgotten() -> bool:
        return await consumers(redis, "city") == ["engine-2"]
    await until(dead_consumer_forgotten, timeout=5)


async def test_given_an_endpoint_added_later_when_the_workers_restart_then_it_gets_the_backlog_and_others_nothing_twice(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city, tax, closings = await receiver(receivers), await receiver(receivers), await receiver(receivers)
    first = await stream_event(redis, "1764552600.00009")
    before, _ = workers.start("engine-1", {"city": hook(city.url)})
    await settled(redis, "city", 1)
    await before.stop(grace=1.0)
    second = await stream_event(redis, "1764552600.00010", line="12366")
    closed = await stream_event(redis, "1764552600.00010", kind="closed", line="12366")
    workers.start("engine-1b", {"city": hook(city.url), "tax": hook(tax.url, lines=("12366",)),
                                "closings": hook(closings.url, events=("closed",))})
    await settled(redis, "city", 3)
    await settled(redis, "tax", 2)
    await settled(redis, "closings", 1)  # the opened events were acknowledged unsent
    assert city.delivered_ids() == [first, second, closed]
    assert tax.delivered_ids() == [second, closed]  # its filter leaves out 12345
    assert closings.delivered_ids() == [closed]


async def test_given_the_stream_deleted_under_a_running_worker_when_events_come_again_then_they_are_delivered(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver]) -> None:
    city = await receiver(receivers)
    first = await stream_event(redis, "1764552600.00014")
    workers.start("engine-1", {"city": hook(city.url)})
    await settled(redis, "city", 1)
    await redis.delete(keyspace.TICKET_EVENTS)  # its consumer groups go with it
    second = await stream_event(redis, "1764552600.00015")
    await settled(redis, "city", 2, timeout=3.0)  # at once, not after some error pause
    assert city.delivered_ids() == [first, second]


async def test_given_a_noisy_log_when_a_worker_delivers_then_no_caller_number_is_logged(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr.push")
    city = await receiver(receivers, statuses=[500])
    await stream_event(redis, "1764552600.00011")
    workers.start("engine-1", {"city": hook(city.url, unmasked_caller=True, plain_http=True)})
    await settled(redis, "city", 1)
    assert "try 1/3 failed: HTTP 500 busy" in caplog.text
    assert CALLER not in caplog.text


async def test_given_a_receiver_answering_with_forged_log_lines_then_its_text_is_logged_escaped_on_one_line(
        redis: aioredis.Redis, workers: Workers, receivers: list[Receiver], caplog: pytest.LogCaptureFixture) -> None:
    """The attack: a receiver's error body with CR/LF, an ANSI escape and U+2028 forges log lines."""
    forged = ("busy\r\n2026-12-06 09:00:00,000 INFO ivr.push: push city: 1764552600.00012:opened delivered"
              "\x1b[2J\u2028admin signed in" + "x" * 5000)
    caplog.set_level(logging.DEBUG, logger="ivr.push")
    city = await receiver(receivers, statuses=[503], refusal=forged)
    await stream_event(redis, "1764552600.00012")
    workers.start("engine-1", {"city": hook(city.url)})
    await settled(redis, "city", 1)
    failed = [r.getMessage() for r in caplog.records if "try 1/3 failed" in r.getMessage()]
    assert len(failed) == 1
    assert not any(ch in failed[0] for ch in "\r\n\x1b\u2028")
    assert "busy\\r\\n2026-12-06" in failed[0] and "\\x1b[2J\\u2028admin" in failed[0]
    assert failed[0].endswith("…") and len(failed[0]) < 400
    delivered = [r.getMessage() for r in caplog.records if r.getMessage().endswith("delivered")]
    assert delivered == ["push city: 1764552600.00012:opened delivered"]  # only the real one
