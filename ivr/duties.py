"""What only one engine per Asterisk may do, under its lease (ivr/store/lease.py, docs/cluster.md).

Every engine serves FastAGI and keeps an AMI session, but only the holder of the ``follow``
lease feeds AMI events to the call follower, the live follower and the seat follower, counts
KPIs, runs queued callbacks, applies the seat wishes to its node (queues/seat_applier.py) and
writes tickets (each write stamped with its fencing token);
the ``hours`` and ``retention`` leases pick one engine for the sub-center hours publisher and
the retention of Asterisk's call logs (and the reports' day tallies of the last week,
reports/tallies.py); the ``nodes`` lease, one for the whole cluster, picks the
engine that closes the calls of a node that died (ivr/node_watch.py). A new holder reconciles from Asterisk at once, as after
an AMI reconnect (``CoreShowChannels``, the CDR since ``followed_until``, ``QueueStatus``). An
engine that loses the lease stops at once and forgets its calls: whoever holds it next
reconciles them. Push delivery needs no lease: its consumer groups hand each event to one engine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine, Mapping

import redis.asyncio as aioredis

from ivr.ami.client import AmiClient
from ivr.callback import CallbackWorker
from ivr.follow import CallFollower
from ivr.node_watch import SCOPE as NODES_SCOPE
from ivr.store.lease import DUTIES, RENEW_EVERY, TTL, Lease, keep_leases
from queues.agents import CALL_EVENTS
from queues.follower import LiveFollower
from transfer.trunk_watch import TrunkWatch
from queues.seat_applier import SeatApplier
from queues.seat_control import SeatFollower

log = logging.getLogger(__name__)

EVENTS = "call,agent,user,system"  # the event classes the followers use (the AMI user's eventfilter narrows them)

Handler = Callable[[Mapping[str, str]], None]


class Duties:
    """The leases of one engine for one Asterisk, and the follower inputs they gate."""

    def __init__(self, redis: aioredis.Redis, asterisk: str, identity: str, follower: CallFollower,
                 live: LiveFollower, seats: SeatFollower, callbacks: CallbackWorker,
                 ami: Callable[[], AmiClient | None], *, ttl: float = TTL, renew_every: float = RENEW_EVERY,
                 confirm: Callable[[], Coroutine[Any, Any, None]] | None = None,
                 applier: SeatApplier | None = None, trunks: TrunkWatch | None = None):
        """``confirm``: a replica holds this connection's writes (Redis behind Sentinel: a lease's
        token counts once it would survive a failover; :func:`ivr.store.failover.confirm`);
        ``applier``: the node's seat applier, fed this node's seat facts (*7x, AgentComplete);
        ``trunks``: the node's trunks' reachability (ContactStatus), for the wallboard."""
        self.redis = redis
        self.leases = {duty: Lease(redis, duty, asterisk, identity, ttl=ttl, renew_every=renew_every, confirm=confirm)
                       for duty in DUTIES}
        self.follow = self.leases["follow"]
        # one engine in the whole cluster watches the nodes and closes a gone node's calls (ivr/node_watch.py)
        self.leases["nodes"] = Lease(redis, "nodes", NODES_SCOPE, identity, ttl=ttl, renew_every=renew_every,
                                     confirm=confirm)
        self.follower, self.live, self.seats, self.callbacks = follower, live, seats, callbacks
        self._ami = ami
        self.applier = applier
        self.trunks = trunks
        self._tasks: set[asyncio.Task[None]] = set()
        follower.tickets.fenced_by(self.follow.token_key, self.follow.fence)

    # --- inputs: acted on only while the follow lease is held ---------------------------------

    def attach(self, ami: AmiClient) -> None:
        """Register the followers on a new AMI client (the engine keeps one session either way)."""
        ami.on("*", self._gated(self.follower.on_event))
        ami.on_login(self._on_login)
        ami.on_disconnect(self.follower.on_disconnect)
        ami.on("QueueMember*", self._gated(self.seats.on_event))
        for name in CALL_EVENTS:  # which node's member is in the call (queues.agents.compose)
            ami.on(name, self._gated(self.seats.on_event))
        for name in ("UserEvent", "OriginateResponse"):  # its steps; its own stand-ins Asterisk refused
            ami.on(name, self._gated(self.callbacks.on_event))
        if self.applier is not None:  # its seat facts, and a seat joined or unpaused where a session holds it
            for name in ("UserEvent", "AgentComplete", "QueueMemberAdded", "QueueMemberPause"):
                ami.on(name, self._gated(self.applier.on_event))
        if self.trunks is not None:
            ami.on("ContactStatus", self._gated(self.trunks.on_event))
        ami.on("*", self._gated(self.live.on_event))  # after the call follower: its tracker knows the call

    def on_ivr_record(self, record: dict[str, Any]) -> None:
        """The engine's own IVR record: the holder's tracker takes it at once; on another engine it
        is only in Redis, where the holder's follower reads it when the call ends."""
        if self.follow.held:
            self.follower.on_ivr_record(record)

    def _gated(self, handler: Handler) -> Handler:
        def gated(event: Mapping[str, str]) -> None:
            if self.follow.held:
                handler(event)
        return gated

    def _on_login(self, ami: AmiClient) -> None:
        if self.follow.held:
            self._reconcile(ami)
        else:
            self._switch_events(ami, on=False)

    def _reconcile(self, ami: AmiClient) -> None:
        self.follower.on_login(ami)
        self.seats.on_login(ami)
        self.live.on_login(ami)
        if self.trunks is not None:
            self.trunks.on_login(ami)

    def _gained(self, _token: int) -> None:
        ami = self._ami()
        if ami is not None and ami.connected:
            self._switch_events(ami, on=True, then=self._reconcile)  # else at the AMI login

    def _lost(self) -> None:
        self.follower.forget()
        ami = self._ami()
        if ami is not None and ami.connected:
            self._switch_events(ami, on=False)

    def _switch_events(self, ami: AmiClient, on: bool, then: Callable[[AmiClient], None] | None = None) -> None:
        """Only the holder has Asterisk send it events: an engine standing by would parse every
        event of every call for nothing (redundancy must not cost CPU per call). Events on first,
        then the reconcile: nothing falls between its snapshot and the events that follow it."""

        async def switch() -> None:
            try:
                await ami.action({"Action": "Events", "EventMask": EVENTS if on else "off"})
            except Exception as exc:  # noqa: BLE001 - a lost session logs in again with events on
                log.warning("AMI events %s not switched (%s)", "on" if on else "off", exc)
            if then is not None:
                then(ami)

        task = asyncio.get_running_loop().create_task(switch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the leases -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Take and renew every lease this engine can, for as long as it runs (one timer, one
        round trip a second for all of them)."""
        await keep_leases([(self.follow, self._gained, self._lost),
                           *((lease, _ignore, _nothing) for lease in self.leases.values() if lease is not self.follow)])

    async def release(self) -> None:
        """A graceful stop hands the leases over at once (the next engine need not wait out the TTL)."""
        for lease in self.leases.values():
            try:
                await lease.release()
            except Exception as exc:  # noqa: BLE001 - Redis down at stop: the TTL frees it
                log.warning("lease %s not released (%s); it expires by itself", lease.key, exc)


def _ignore(_token: int) -> None:
    """The hours and retention leases need nothing at a gain: their work waits on ``while_held``."""


def _nothing() -> None:
    """... nor at a loss (``while_held`` cancels it)."""
