"""The real-Asterisk tier: one isolated test bed (Asterisk + Redis + engine) per session.

Nothing here skips: if Asterisk, Redis or sipp cannot start, every test errors with the
reason. Tests wait for AMI events or Redis state with bounded waits, never bare sleeps.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from queues.model import memberships
from queues.wish import Change
from queues.wish_store import SeatWishes
from tickets.store import TicketStore
from testbed.bed import BedState, TestBed
from testbed.calls import Phones, hang_up_all, run_ivr
from testbed.console import ConsoleSite, bed_site
from testbed.pytest_plugin import kept_logs
from testbed.sentinel import sentinel_redis

REPO = Path(__file__).resolve().parents[2]
EXPERT_HOURS = 'hours: {day: working, time: "08:30-17:30"}'
GENERAL_CALLBACK = 'callback: {after: 30, key: "1", attempts: 3, retry_after: 60}'
NODE_LOSS_DELAY = "queue: general, delay: 30}"
RECORDING_DEFAULT = "  default: answer\n"
RECORDING_NOTICE = "  notice: false\n"



@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of config/ (tests may edit it and reload); prompts/ is shared."""
    root = tmp_path_factory.mktemp("deployment")
    shutil.copytree(REPO / "config", root / "config")
    (root / "prompts").symlink_to(REPO / "prompts")
    # Expert seats keep office hours; tests run at any hour, so here they are staffed around the
    # clock (what happens outside the hours is tested where the clock is pinned).
    queues = root / "config" / "queues.yaml"
    text = queues.read_text(encoding="utf-8")
    assert EXPERT_HOURS in text and GENERAL_CALLBACK in text
    # and a waiting caller may ask for a callback after 2 s instead of 30, tried twice, 5 s apart
    text = text.replace(EXPERT_HOURS, "hours: {day: any}").replace(
        GENERAL_CALLBACK, 'callback: {after: 2, key: "1", attempts: 2, retry_after: 5}')
    # and callers of a lost node are called back 1 s after it is declared gone, not 30 s
    assert NODE_LOSS_DELAY in text
    text = text.replace(NODE_LOSS_DELAY, "queue: general, delay: 1}")
    queues.write_text(text, encoding="utf-8")
    # with several engines, consecutive calls start at different engines (production takes turns
    # of agi.engine_turn_s seconds; test_cluster_engines.py runs those through the dialplan's global)
    engine = root / "config" / "engine.yaml"
    text = engine.read_text(encoding="utf-8")
    assert "\nagi:\n" in text and "engine_turn_s" not in text
    engine.write_text(text.replace("\nagi:\n", "\nagi:\n  engine_turn_s: 0\n", 1), encoding="utf-8")
    # and supervisors' phones, for live supervision (tests/integration/test_supervision.py): a shared
    # one, and one that is console user banzhang02's own
    supervision = root / "config" / "supervision.yaml"
    text = supervision.read_text(encoding="utf-8")
    assert "supervisors: {}" in text
    supervision.write_text(text.replace("supervisors: {}", "supervisors: {supervisor01: {name: 值班长01}, "
                                        "supervisor02: {name: 值班长02, user: banzhang02}}"), encoding="utf-8")
    # Calls are not recorded (and hear no notice, which is off anyway): the tests of other features
    # keep their timings; tests/integration/test_recording.py switches its policy on (docs/recording.md)
    recording = root / "config" / "recording.yaml"
    text = recording.read_text(encoding="utf-8")
    assert RECORDING_DEFAULT in text and RECORDING_NOTICE in text
    recording.write_text(text.replace(RECORDING_DEFAULT, "  default: never\n"), encoding="utf-8")
    # and one department that writes its handling back through the engine's console (the progress
    # query hears what it wrote: tests/integration/test_ticket_self_service.py); its key in a file
    # beside config/, as deployed (never in config/)
    (root / "civil-affairs.key").write_text(secrets.token_urlsafe(24) + "\n")
    tickets = root / "config" / "tickets.yaml"
    text = tickets.read_text(encoding="utf-8")
    assert "\n  departments: {}\n" in text
    tickets.write_text(text.replace("\n  departments: {}\n", (
        f"\n  departments:\n    civil-affairs: {{title: 省民政厅, key_file: {root / 'civil-affairs.key'}}}\n")),
        encoding="utf-8")
    return root / "config"


@pytest.fixture(scope="session")
def bed(config_dir: Path) -> Iterator[TestBed]:
    with TestBed(config_dir, name=f"pytest-{os.getpid()}").running(kept_logs("testbed-logs")) as tb:
        yield tb


@pytest.fixture(scope="session")
def state(bed: TestBed) -> BedState:
    assert bed.state
    return bed.state


@pytest.fixture(scope="session")
def console(state: BedState) -> ConsoleSite:
    """The web console the bed's engine serves (``browser`` in tests/conftest.py opens it)."""
    return bed_site(state)


@pytest.fixture
def engine(bed: TestBed) -> TestBed:
    """The engine is running (restarted if a previous test killed it)."""
    if not bed.state or not bed.state.engine_pid:
        bed.start_engine()
    return bed


@pytest.fixture
async def tax_rings_briefly(bed: TestBed, engine: TestBed, config_dir: Path) -> AsyncIterator[int]:
    """The tax sub-center rings 3 s instead of its configured 20 s (edited in the session's
    private config/ and hot-reloaded), so a no-answer test takes seconds, not half a minute
    (test_flows, test_tickets)."""
    seconds = 3
    path_ = config_dir / "subcenters.yaml"
    original = path_.read_text(encoding="utf-8")
    line = next(ln for ln in original.splitlines() if ln.strip().startswith("tax:"))
    assert line.rstrip().endswith("}") and "ring_timeout" not in line
    path_.write_text(original.replace(line, line.rstrip()[:-1] + f", ring_timeout: {seconds}}}"), encoding="utf-8")
    try:
        code, out = await run_ivr(engine.state, "reload")  # type: ignore[arg-type]
        assert code == 0, out
        yield seconds
    finally:
        path_.write_text(original, encoding="utf-8")
        code, out = await run_ivr(engine.state, "reload")  # type: ignore[arg-type]
        assert code == 0, out


@pytest.fixture
async def ami(state: BedState) -> AsyncIterator[AmiClient]:
    """A read-all AMI session (the bed's `testbed` user) for observing calls."""
    client = AmiClient("127.0.0.1", state.ami_port, "testbed", state.testbed_ami_secret)
    await client.connect()
    yield client
    client.close()


@pytest.fixture
async def redis(state: BedState) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(state.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def ticket_reader(bed: TestBed, workdir: Path) -> AsyncIterator[TicketStore]:
    """A bed's tickets, read through the repository (the one owner of the key schema), on the
    Redis the engines use (the master Sentinel names, on a cluster bed)."""
    assert bed.state
    store = TicketStore(bed.settings.redis, workdir / "ticket-reader", name="test", retention_days=1,
                        caller_key=bed.state.caller_key.encode())
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def tickets(bed: TestBed, tmp_path: Path) -> AsyncIterator[TicketStore]:
    async with ticket_reader(bed, tmp_path) as store:
        yield store


@pytest.fixture
async def phones(bed: TestBed, tmp_path: Path) -> AsyncIterator[Phones]:
    p = Phones(bed, tmp_path)
    yield p
    await p.close()


@pytest.fixture
async def full_shift(bed: TestBed, state: BedState, ami: AmiClient) -> AsyncIterator[None]:
    """Whatever a test does to the seats, the next one starts with every agent logged in and
    available again: in the seat wishes every node applies (queues/wish.py) and on the node."""
    yield
    wishes = SeatWishes(state.redis_url)
    try:
        now = time.time()
        for agent in await wishes.all():
            if agent in bed.settings.agents:
                queues = memberships(bed.settings.agents[agent], bed.settings.queues)
                await wishes.change(agent, Change("login", now, queues=queues))
                await wishes.change(agent, Change("unpause", now))
    finally:
        await wishes.close()
    await bed.log_in_agents()
    for agent in bed.settings.agents:
        await ami.action({"Action": "QueuePause", "Interface": f"PJSIP/{agent}", "Paused": "false"})


@pytest.fixture
async def no_call_outlives_the_test(phones: Phones, ami: AmiClient) -> AsyncIterator[None]:
    """Hang up whatever a test left up (use with ``pytestmark = pytest.mark.usefixtures(...)``)."""
    yield
    await hang_up_all(ami)


# --- the cluster bed (docs/cluster.md): two engines, Redis master + 2 replicas + 3 sentinels ------


@pytest.fixture(scope="session")
def cluster_bed(config_dir: Path) -> Iterator[TestBed]:
    """One node served by two engines, Redis behind Sentinel; shared by the cluster tests of a
    worker, so each leaves it healthy (a test that kills the Redis master builds its own bed)."""
    bed = TestBed(config_dir, name=f"pytest-cluster-{os.getpid()}", engines=2, sentinel=True)
    with bed.running(kept_logs("testbed-logs-cluster")) as tb:
        yield tb


@pytest.fixture
def cluster(cluster_bed: TestBed) -> TestBed:
    """The cluster bed with every engine running (restarted if a previous test killed one)."""
    assert cluster_bed.state
    for index in range(cluster_bed.state.engines):
        if not cluster_bed.engine_running(index):
            cluster_bed.start_engine(index=index)
    return cluster_bed


@pytest.fixture
async def cluster_redis(cluster_bed: TestBed) -> AsyncIterator[aioredis.Redis]:
    """The cluster's Redis master, whichever data node Sentinel names now."""
    assert cluster_bed.state
    client = sentinel_redis(cluster_bed.state)
    yield client
    await client.aclose()


@pytest.fixture
async def cluster_ami(cluster_bed: TestBed) -> AsyncIterator[AmiClient]:
    assert cluster_bed.state
    client = AmiClient("127.0.0.1", cluster_bed.state.ami_port, "testbed", cluster_bed.state.testbed_ami_secret)
    await client.connect()
    yield client
    client.close()


@pytest.fixture
async def cluster_tickets(cluster_bed: TestBed, tmp_path: Path) -> AsyncIterator[TicketStore]:
    async with ticket_reader(cluster_bed, tmp_path) as store:
        yield store


@pytest.fixture
async def cluster_phones(cluster_bed: TestBed, tmp_path: Path) -> AsyncIterator[Phones]:
    p = Phones(cluster_bed, tmp_path)
    yield p
    await p.close()
