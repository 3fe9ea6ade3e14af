"""`ivr serve` wiring: config → flows, store, FastAGI server, AMI client, signals.

SIGHUP reloads config/ (only a fully valid set goes live); SIGTERM/SIGINT stop gracefully,
letting calls in progress finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Awaitable, Callable

from ivr.agi.call_guard import resume_key
from ivr.agi.channel import AgiChannel
from ivr.agi.fastagi import FastAgiServer
from ivr.ami.client import AmiClient, AmiError
from aiohttp import web
from redis.exceptions import RedisError

from console.context import CONSOLE, Console, console_redis
from ivr.config import ConfigError, LoadedConfig, audit_log_path, require_caller_key
from ivr.callback import CallbackWorker
from ivr.cluster_reload import ClusterReload
from ivr.store.engines import EngineRegistry
from ivr.engine import EarlierTicket, Engine
from ivr.hot_reload import LiveFlows, ReloadResult, catalog_loader, default_prompts_dir
from ivr.follow import CallFollower
from ivr.duties import EVENTS, Duties
from ivr.core.identity import engine_identity
from ivr.store import redis_client
from ivr.store.failover import confirm, confirm_replicas
from ivr.core.latency import EngineLatency
from queues.follower import LiveFollower, deadline_on
from tickets.webhooks import PushWorker
from queues.seat_applier import seat_applier
from transfer.trunk_watch import TrunkWatch
from transfer.model import qualified_trunks
from queues.seat_control import SeatFollower
from transfer.ami import HoursPublisher
from ivr.node_watch import NodeWatch
from recording.worker import RecordingWorker
from ivr.core.secret_policy import deployment_secret_problems
from ivr.store import CallStore, ElderlyList
from queues.store import SeatStore
from tickets.store import TicketStore
from tickets.reads import TicketReader
from ivr.config import state_dir
from tickets.model import Ticket
from tracking.retention import run_retention
from reports.tallies import keep_tallies

log = logging.getLogger("ivr.service")


class Service:
    def __init__(self, loaded: LoadedConfig):
        self.loaded = loaded
        s = loaded.settings
        if s.ami.secret is None:
            raise ConfigError("missing AMI secret: set IVR_AMI_SECRET (never kept in config/)")
        caller_key = require_caller_key()
        if weak := deployment_secret_problems(s):
            raise ConfigError("\n".join(weak))
        self.flows = LiveFlows.from_config(loaded.config_dir, catalog_loader(default_prompts_dir(loaded.config_dir)))
        for problem in self.flows.current.lint_problems:  # started anyway; a reload would refuse it
            log.warning("compliance: %s", problem)
        spool, flush_delay = state_dir() / "spool", s.redis.record_flush_ms / 1000
        self.store = CallStore(s.redis, spool, name=f"server-{s.agi.port}", flush_delay=flush_delay,
                               retention_days=s.tickets.retention_days)
        # the same group-commit window as call records: journaled first, so waiting loses nothing,
        # and a window's tickets share one round trip (benchmarks/README.md, AMI events)
        self.tickets = TicketStore(s.redis, spool, name=f"server-{s.agi.port}",
                                   retention_days=s.tickets.retention_days, flush_delay=flush_delay,
                                   caller_key=caller_key)
        self.elderly = ElderlyList(s.redis, caller_key)
        self.follower = CallFollower(s, self.tickets, lambda: self.flows.current.calendar,
                                     asterisk=f"{s.ami.host}:{s.ami.port}", call_record=self.store.get_call,
                                     live_settings=lambda: self.flows.current.settings)
        self.engine = Engine(self.flows, self.store, call_timeout=s.agi.call_timeout,
                             on_record=lambda record: self.duties.on_ivr_record(record), repeat_of=self._repeat_of,
                             tickets=self.tickets, is_elderly=self.elderly.contains,
                             channel_seen=self.follower.channel_seen, resume_key=resume_key(caller_key))
        # recordings compressed and put on their tickets after the call, by the follow lease's holder
        self.recordings = RecordingWorker(lambda: self.flows.current.settings.recording, self.tickets)
        self.follower.on_closed = self.recordings.poke
        self.callbacks = CallbackWorker(s, self.tickets, s.redis, caller_key, lambda: self.ami,
                                        live_settings=lambda: self.flows.current.settings)
        self.seats = SeatFollower(s, SeatStore(s.redis, node=f"{s.ami.host}:{s.ami.port}"),
                                  live_settings=lambda: self.flows.current.settings)
        self.live = LiveFollower(s.redis, f"{s.ami.host}:{s.ami.port}", self._followed_ticket,
                                 lambda: self.flows.current.settings.agents, tickets=self.tickets,
                                 deadline=deadline_on(lambda: self.flows.current.settings,
                                                      lambda: self.flows.current.calendar))
        self.push = PushWorker(s.redis, s, consumer=self.name)
        # one follower per Asterisk: only the lease holder follows calls and writes tickets (on the
        # tickets' Redis: the fencing token is checked where the tickets are written)
        leases = redis_client(s.redis, 4, 1.0, name="leases")
        replicas, confirm_ms = confirm_replicas(s.redis)
        # the seat wishes applied to this node (queues/seat_applier.py), under the follow lease
        self.applier = seat_applier(lambda: self.flows.current.settings, f"{s.ami.host}:{s.ami.port}")
        # whether this node's trunks' gateways answer OPTIONS (the wallboard, /metrics)
        self.trunks = TrunkWatch(s.redis, f"{s.ami.host}:{s.ami.port}", lambda: qualified_trunks(
            self.flows.current.settings.subcenters, self.flows.current.settings.emergency))
        self.duties = Duties(leases, f"{s.ami.host}:{s.ami.port}", self.name, self.follower, self.live, self.seats,
                             self.callbacks, lambda: self.ami,
                             confirm=(lambda: confirm(leases, replicas, confirm_ms)) if replicas else None,
                             applier=self.applier, trunks=self.trunks)
        # the calls of a node that died: closed by one engine in the cluster, under that node's follow lease
        self.node_tickets = TicketStore(s.redis, spool, name=f"nodes-{s.agi.port}", retention_days=s.tickets.retention_days,
                                        caller_key=caller_key)
        self.node_watch = NodeWatch(lambda: self.flows.current.settings, leases, self.node_tickets, caller_key, self.name,
                                    confirm=(lambda: confirm(leases, replicas, confirm_ms)) if replicas else None,
                                    seats=self.seats.store)
        # sub-center hours for the agents' own transfers, as the transfer AMI user
        self.hours = HoursPublisher(lambda: self.flows.current.settings, lambda: self.flows.current.calendar)
        self.ami: AmiClient | None = None
        self.latency = EngineLatency()
        # this engine's status and its part in the cluster's config announcements (docs/cluster.md)
        self.cluster = ClusterReload(EngineRegistry(self.store.redis), self.name, lambda: self.flows.version,
                                     lambda: self.reload(announce=False),
                                     leases=lambda: [f"{duty}#{lease.token}" for duty, lease in self.duties.leases.items()
                                                     if lease.held],
                                     extra=lambda: {"latency": self.latency.to_json()})  # loop lag, AGI round trips

    async def _repeat_of(self, caller: str, this_call: str) -> list[EarlierTicket]:
        """The caller's earlier tickets of the last ``tickets.repeat_days`` (the call's own
        ticket, opened as it rang, is not one of them)."""
        days = self.loaded.settings.tickets.repeat_days
        if not days:
            return []
        earlier = await self.tickets.recent_for_caller(caller, time.time() - days * 86_400)
        return [EarlierTicket(t.number, t.case_open, case=bool(t.answered) or t.status != "accepted")
                for t in earlier if t.number and t.linkedid != this_call]

    def _followed_ticket(self, linkedid: str) -> Ticket | None:
        """The ticket of a call this engine follows now (the live follower's stubs)."""
        call = self.follower.tracker.calls.get(linkedid)
        return call.ticket if call is not None else None

    @property
    def name(self) -> str:
        """This engine among those sharing Redis: host:port:pid (ivr/core/identity.py)."""
        return engine_identity(self.loaded.settings.agi.port)

    async def reload(self, announce: bool = True) -> ReloadResult:
        """Recompile config/; only a fully valid set goes live (calls in progress keep theirs).
        A version that went live is announced to the other engines unless ``announce`` is False
        (the reload answers another engine's announcement)."""
        result = await asyncio.to_thread(self.flows.reload)
        if result.ok:
            log.info("reloaded config: version %s is live", result.version)
            self.hours.republish()
            self.applier.reloaded()  # the leader sessions may have moved (docs/sessions.md)
        else:
            log.error("reload refused, version %s stays live:\n%s", result.version, "\n".join(result.errors))
        await self.cluster.reloaded(result, announce)
        return result

    async def run_forever(self) -> int:
        s = self.loaded.settings
        server = FastAgiServer(header_timeout=s.agi.header_timeout, allowed_peers=s.agi.allowed_peers)
        server.route("ivr", self.engine.handle_call)
        AgiChannel.on_roundtrip = self.latency.agi_reply
        try:
            await server.start(s.agi.host, s.agi.port)
        except OSError as exc:
            what = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
            raise ConfigError(
                f"FastAGI port {s.agi.host}:{s.agi.port} {what} (agi.port from {self.loaded.origin('agi.port')})"
            ) from None
        log.info("FastAGI listening on %s:%d, flows version %s", s.agi.host, s.agi.port, self.flows.version)
        console = await self._start_console(server)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        pidfile = engine_pidfile(s.agi.port)
        pidfile.write_text(str(os.getpid()))
        reloads: set[asyncio.Task[ReloadResult]] = set()

        def on_sighup() -> None:
            task = loop.create_task(self.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with asyncio.TaskGroup() as tasks:
                background = [
                    tasks.create_task(self._connect_ami()),  # may still be retrying: cancelled at stop
                    tasks.create_task(keep_running(self.store.run_spool_flusher, "record spool flusher")),
                    tasks.create_task(keep_running(self.tickets.run_spool_flusher, "ticket spool flusher")),
                    tasks.create_task(keep_running(self.node_tickets.run_spool_flusher, "node-lost ticket spool flusher")),
                    tasks.create_task(keep_running(self.follower.run, "call follower")),
                    tasks.create_task(keep_running(self.duties.run, "leases")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.seats.run),
                                                   "seat follower")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.live.run),
                                                   "live follower")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.applier.run),
                                                   "seat applier")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.trunks.run),
                                                   "trunk watch")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.callbacks.run),
                                                   "callbacks")),
                    tasks.create_task(keep_running(lambda: self.duties.follow.while_held(self.recordings.run),
                                                   "recording worker")),
                    tasks.create_task(keep_running(self.push.run, "ticket push")),
                    tasks.create_task(keep_running(lambda: self.duties.leases["nodes"].while_held(self.node_watch.run),
                                                   "node watch")),
                    tasks.create_task(keep_running(lambda: self.duties.leases["retention"].while_held(
                        lambda: run_retention(lambda: self.loaded.settings, reopen=self._reopen_logs)),
                        "log retention")),
                    tasks.create_task(keep_running(lambda: self.duties.leases["retention"].while_held(
                        lambda: keep_tallies(self.tickets.redis, lambda: self.loaded.settings)), "report day tallies")),
                    tasks.create_task(keep_running(self._status_heartbeat, "status heartbeat")),
                    tasks.create_task(keep_running(lambda: self.duties.leases["hours"].while_held(self.hours.run),
                                                   "sub-center hours publisher")),
                    tasks.create_task(keep_running(lambda: self.latency.sample_loop_lag(
                        idle_interval=1.0, busy=lambda: server.active_calls > 0), "loop lag sampler")),
                    tasks.create_task(systemd_watchdog()),
                    tasks.create_task(self._index_agents()),
                ]
                await stop.wait()
                log.info("stopping: %d call(s) in progress", server.active_calls)
                await server.stop(grace=10)
                await self.push.stop(grace=5)  # deliveries in flight finish and are recorded
                for task in background:
                    task.cancel()
                if self.ami:
                    self.ami.close()
            await self.cluster.leave()
            if console is not None:
                await console.cleanup()
                await console.app[CONSOLE].redis.aclose()
            for store in (self.store, self.tickets, self.node_tickets):
                await store.flush_spool()
                await store.close()
            if self.duties.follow.held:  # nobody follows this node's seats until the next holder
                with contextlib.suppress(RedisError, OSError):
                    await self.seats.store.drop_node()
            await self.seats.store.close()
            await self.applier.wishes.close()
            await self.live.close()
            await self.trunks.close()
            await self.callbacks.close()
            await self.duties.release()  # after the last ticket writes: they still carry a current token
            await self.duties.redis.aclose()
            await self.elderly.close()
        finally:
            pidfile.unlink(missing_ok=True)
        return 0

    async def _start_console(self, server: FastAgiServer) -> web.AppRunner | None:
        """The web console on ``web.port`` (console/), sharing the live flows and the ticket store."""
        s = self.loaded.settings
        if not s.web.enabled:
            return None
        from console.metrics import EngineView
        from console.server import start

        console = Console(
            redis=console_redis(s.redis, s.web),
            web=s.web, settings=lambda: self.flows.current.settings, config_dir=self.loaded.config_dir,
            audit_log=audit_log_path(), flows=self.flows, tickets=self.tickets, reload=self.reload,
            engine=EngineView(lambda: server.active_calls, self.latency,
                              lambda: {"calls": self.store, "tickets": self.tickets}, lambda: server.peers.refused),
        )
        runner = await start(console, origin=self.loaded.origin("web.port"))
        log.info("console listening on http://%s:%d/", s.web.host, s.web.port)
        return runner

    async def _index_agents(self, retry: float = 30.0) -> None:
        """Tickets from before the agent index join it (agents' lists read only that index)."""
        while True:
            try:
                added = await TicketReader(self.tickets.redis).index_agents(int(self.tickets.retention_s))
            except (RedisError, OSError) as exc:
                log.warning("agent index of earlier tickets: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(retry)
                continue
            if added:
                log.info("agent index: %d earlier ticket(s) added", added)
            return

    async def _status_heartbeat(self) -> None:
        """Renew the status (a Redis restart must not hide the live version, a dead engine's
        expires) and follow the other engines' config announcements (ivr/cluster_reload.py)."""
        await self.cluster.run()

    async def _connect_ami(self) -> None:
        """AMI is for events and actions; calls flow without it, so keep trying in the background."""
        s = self.loaded.settings
        assert s.ami.secret is not None
        while True:
            # Only the event classes the call tracker uses (and the user's eventfilter only its events).
            self.ami = AmiClient(s.ami.host, s.ami.port, s.ami.username, s.ami.secret.get_secret_value(),
                                 events=EVENTS, event_batch=s.ami.event_batch_ms / 1000)
            self.duties.attach(self.ami)  # the followers hear it only while this engine holds the lease
            try:
                await self.ami.connect()
                log.info("AMI connected to %s", self.ami.address)
                return
            except AmiError as exc:
                log.warning("%s; retrying", exc)
                self.ami.close()
                await asyncio.sleep(2)


    async def _reopen_logs(self) -> bool:
        """Ask Asterisk to reopen queue_log after the retention moved it (AMI LoggerRotate)."""
        if self.ami is None or not self.ami.connected:
            return False
        try:
            await self.ami.action({"Action": "LoggerRotate"})
            return True
        except (AmiError, TimeoutError):
            return False


async def systemd_watchdog() -> None:
    """Tell systemd we are ready, then prove the event loop is alive (``WatchdogSec=``).

    A frozen engine holds its calls' AGI sockets: Asterisk waits on them even past the
    dialplan's timeout. The supervisor killing a frozen engine is what frees those calls to
    the general queue (deploy/ivr12345.service).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    interval = int(os.environ.get("WATCHDOG_USEC", "10000000")) / 2e6
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)
        while True:
            sock.sendto(b"WATCHDOG=1", address)
            await asyncio.sleep(interval)


async def keep_running(loop_fn: Callable[[], Awaitable[None]], what: str) -> None:
    """Run a background loop; if it fails, log and restart it. Call handling never depends on it."""
    while True:
        try:
            await loop_fn()
            return
        except Exception:
            log.exception("%s failed; restarting it", what)
            await asyncio.sleep(1)


def engine_pidfile(agi_port: int) -> Path:
    """Where a running engine leaves its pid (for `ivr reload`), keyed by its FastAGI port."""
    d = state_dir() / "engines"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"engine-{agi_port}.pid"
