"""The node-gone duty (issue 20, docs/cluster.md "When a node dies"): one engine in the cluster,
the holder of the ``nodes`` lease, watches every Asterisk node's AMI and, when a node has refused
it for ``cluster.node_dead_after_s`` *and* nobody follows that node's calls, closes them.

Nobody follows a node when its ``follow`` lease is free, or its holder has no AMI session: the
holder marks ``followed_until`` every few seconds only while its session is up (ivr/follow.py).
A node that answers again, or whose follower still hears it (the watcher's own link may be the
one that failed), is not gone: a flapping link closes no live call.

The close runs under the node's own ``follow`` lease, taken over from a holder that does not
follow (:func:`ivr.store.lease.take_over`): the writes carry its fencing token like every ticket
write, the old holder stops and forgets those calls at its next renewal, and when the node comes
back its follower takes the lease again and reconciles from an Asterisk that has no trace of
them. Every ticket of the node that is still open is closed once (``node_lost``,
:mod:`tracking.node_gone`); the callers the policy (``callbacks.node_loss``) names get a callback
request, kept in Redis for whichever node's callback worker places it (one claim per attempt).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Awaitable, Callable, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.callback import keep
from ivr.config import Settings
from ivr.config.cluster import NODE_DEAD_AFTER_S
from ivr.core.conftext import split_ip_port
from ivr.core.masking import mask_number
from ivr.follow import MARK_INTERVAL
from ivr.store import keyspace
from ivr.store.lease import give_back, take_over
from queues import callback as policy
from queues.kpi import visit_increments
from ivr.asterisk_conf.asterisk import node_entity_id
from ivr.asterisk_conf.node_seats import DUTY
from ivr.sip_publish import publish_states
from queues.store import SeatStore
from queues.waiting import Waiting
from tickets.model import Ticket
from tickets.store import TicketStore
from tracking import node_gone
from tracking.node_gone import Seen

log = logging.getLogger(__name__)

SCOPE = "cluster"  # the ``nodes`` lease is one for the whole cluster, not one per Asterisk
PROBE_EVERY = 1.0  # s between two probes of a node
PROBE_TIMEOUT = 1.0  # s for the AMI banner: a frozen Asterisk that accepts TCP but says nothing is down too
FOLLOW_FRESH = MARK_INTERVAL + 2.0  # s: a ``followed_until`` older than this means nobody hears the node
CALL_WINDOW = 6 * 3600  # s of tickets looked at: no call of the node is older (a callback's stand-in waits 1 h)
BANNER = b"Asterisk Call Manager/"


async def answers(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether Asterisk's manager greets us: TCP accepted and the banner line sent. No login: a
    login per second and node would fill Asterisk's security log, and needs no secret here."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            return (await reader.readline()).startswith(BANNER)
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()


def nodes_of(settings: Settings) -> dict[str, str]:
    """Node name (its ``systemname``; "" for a platform without a cluster section) → its AMI as the
    follow lease names it (``host:port``)."""
    if settings.cluster is None or not settings.cluster.nodes:
        return {"": f"{settings.ami.host}:{settings.ami.port}"}
    return {name: "{}:{}".format(*split_ip_port(node.ami)) for name, node in settings.cluster.nodes.items()}


class NodeWatch:
    """Probes the nodes and closes the calls of a gone one (run only by the ``nodes`` lease holder)."""

    def __init__(self, settings: Callable[[], Settings], redis: aioredis.Redis, tickets: TicketStore,
                 caller_key: bytes, identity: str, *, probe: Callable[[str, int], Awaitable[bool]] = answers,
                 confirm: Callable[[], Awaitable[None]] | None = None, seats: SeatStore | None = None):
        """``redis``: the leases' client; ``tickets``: a store of this duty's own (its writes are
        fenced by the gone node's follow lease, not by this engine's); ``confirm``: a replica holds
        the token taken (Redis behind Sentinel, as for every lease); ``seats``: the published seats,
        from which a gone node's view is taken out at once (its seats would show talking there
        until the view expires)."""
        self.confirm, self.seats = confirm, seats
        self.settings, self.redis, self.tickets, self.caller_key = settings, redis, tickets, caller_key
        self.identity = f"{identity}/node-gone"  # as the follow lease names this duty while it closes
        self.probe = probe
        self.down_since: dict[str, float] = {}  # node → first failed probe of the current outage
        self.gone: set[str] = set()  # nodes whose calls were closed in the current outage

    def dead_after(self) -> float:
        cluster = self.settings().cluster
        return cluster.node_dead_after_s if cluster is not None else NODE_DEAD_AFTER_S

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check(time.time())
            except (RedisError, OSError) as exc:  # the probes' outage counts go on; the close is retried
                log.warning("node watch: Redis unavailable (%s); retrying", exc)
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    async def check(self, now: float) -> None:
        """One round: probe every node; close the calls of each that is gone now."""
        nodes = nodes_of(self.settings())
        results = await asyncio.gather(*(self._answers(ami) for ami in nodes.values()))
        for (name, ami), up in zip(nodes.items(), results):
            if up:
                if name in self.down_since:
                    log.info("node %s answers again", name or ami)
                self.down_since.pop(name, None)
                self.gone.discard(name)
                continue
            since = self.down_since.setdefault(name, now)
            if name not in self.gone and now - since >= self.dead_after():
                if await self.close_node(name, ami, now):
                    self.gone.add(name)

    async def _answers(self, ami: str) -> bool:
        host, _, port = ami.rpartition(":")
        return await self.probe(host, int(port))

    async def followed(self, ami: str, now: float) -> tuple[bool, str]:
        """(someone follows the node, the follow lease's value as Redis holds it: '' free)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keyspace.lease("follow", ami))
            pipe.hget(keyspace.cdr_progress(ami), "followed_until")
            held, until = await pipe.execute()
        fresh = bool(until) and now - float(until) < FOLLOW_FRESH
        return bool(held) and fresh, str(held or "")

    async def close_node(self, node: str, ami: str, now: float) -> bool:
        """Close the node's open calls under its follow lease; False: not now (followed, or the
        lease changed hands meanwhile: tried again next round)."""
        followed, held = await self.followed(ami, now)
        if followed:
            return False
        token = await take_over(self.redis, "follow", ami, held, self.identity)
        if not token:
            return False
        try:
            if self.confirm is not None:
                await self.confirm()  # raises RedisError: not acted on (a promoted replica could give it again)
            self.tickets.fenced_by(keyspace.lease_token("follow", ami), lambda: token)
            closed, called = await self._close_calls(node, ami, now)
            await self.tickets.drain()
            if self.seats is not None:
                await self.seats.drop_node(ami)
            await self._clear_device_states(node)
        finally:
            await give_back(self.redis, "follow", ami, token, self.identity)
        log.warning("node %s gone (AMI %s silent for %.0f s, nobody following): %d call(s) closed as lost to it, "
                    "%d callback(s) scheduled", node or "Asterisk", ami, now - self.down_since.get(node, now), closed, called)
        return True

    async def _clear_device_states(self, node: str) -> None:
        """Every other node still holds the dead node's last seat states (remote device state never
        expires: a seat that talked there stays in use everywhere): ``INVALID`` under its entity id
        ranks lowest, so each node's own view of the seat decides again."""
        s = self.settings()
        if s.cluster is None or not node or not s.agents:
            return
        local, eid = f"{s.agi.host}:{s.agi.port}", node_entity_id(node)
        states = {f"PJSIP/{seat}": "INVALID" for seat in s.agents}
        for other, peer in s.cluster.nodes.items():
            if other == node:
                continue
            try:
                answers = await publish_states(local, peer.sip, DUTY, states, eid)
            except (OSError, ValueError) as exc:
                log.warning("node %s gone: its seat states not cleared on %s (%s)", node, other, exc)
                continue
            refused = {d: code for d, code in answers.items() if code != 200}
            if refused:
                log.warning("node %s gone: %s did not take the cleared seat states: %s", node, other, refused)

    async def _close_calls(self, node: str, ami: str, now: float) -> tuple[int, int]:
        settings, redis = self.settings(), self.tickets.redis
        seen = await self._seen(ami, settings)
        rules = settings.callbacks.node_loss
        at = datetime.fromtimestamp(now).astimezone()
        called = 0
        tickets = await self._open_tickets(node, now)
        for ticket in tickets:
            where = node_gone.place(seen.get(ticket.linkedid))
            if rules.wants(where):
                called += await self._call_back(ticket, seen.get(ticket.linkedid), settings, now)
            for change in node_gone.close(ticket, seen.get(ticket.linkedid), node, at):
                if change.visit is not None:
                    increments = visit_increments(change.ticket, change.visit, final=change.final,
                                                  keep_days=settings.tickets.kpi_retention_days)
                    self.tickets.write_visit_nowait(ticket.linkedid, change.phase, increments)
                else:
                    self.tickets.write_nowait(change.ticket, change.phase)
        stale = [uid for uid, w in seen.items() if w.queue]
        if stale:  # the wallboard must not show the node's callers waiting forever
            await redis.hdel(keyspace.QUEUE_WAITING, *stale)
        return len(tickets), called

    async def _seen(self, ami: str, settings: Settings) -> dict[str, Seen]:
        """Where the live follower last saw each call of the node (waiting callers, seats talking)."""
        redis = self.tickets.redis
        out: dict[str, Seen] = {}
        for text in cast(dict[str, str], await redis.hgetall(keyspace.QUEUE_WAITING)).values():
            w = Waiting.from_json(json.loads(text))
            if w.asterisk == ami:
                out[w.uniqueid] = Seen(queue=w.queue, joined=w.joined)
        agents = sorted(settings.agents)
        async with redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hget(keyspace.desk(agent), "doc")
            docs = await pipe.execute()
        for agent, doc in zip(agents, docs):
            desk = json.loads(doc) if doc else {}
            if desk.get("state") == "connected" and desk.get("linkedid"):
                out[str(desk["linkedid"])] = Seen(agent=agent)
        return out

    async def _open_tickets(self, node: str, now: float) -> list[Ticket]:
        """The node's tickets of the last hours whose call was never closed."""
        redis = self.tickets.redis
        ids = [i for i in cast(list[str], await redis.zrangebyscore(keyspace.TICKETS_BY_TIME, now - CALL_WINDOW, "+inf"))
               if node_gone.of_node(i, node)]
        async with redis.pipeline(transaction=False) as pipe:
            for linkedid in ids:
                pipe.hexists(keyspace.ticket(linkedid), "phase:closed")
            closed = await pipe.execute()
        out = []
        for linkedid, done in zip(ids, closed):
            ticket = None if done else await self.tickets.get(linkedid)
            if ticket is not None and not ticket.closed:
                out.append(ticket)
        return out

    async def _call_back(self, ticket: Ticket, seen: Seen | None, settings: Settings, now: float) -> int:
        """Schedule the caller's callback (1), or say on the ticket why not (0). The number is checked
        as every callback's is: a caller ID never makes the platform dial 110 or abroad."""
        rules = settings.callbacks.node_loss
        why = policy.refusal(settings.callers, policy.callback_queues(settings.queues), ticket.caller, rules.queue)
        queued_at = seen.joined if seen is not None and seen.joined else datetime.fromisoformat(ticket.received).timestamp()
        request = policy.node_loss_request(rules, ticket.linkedid, ticket.caller, queued_at, ticket.priority or 0, now,
                                           line=ticket.line, matter=ticket.request_type)
        if not why and not await keep(self.tickets.redis, request, self.caller_key):
            why = "该号码已有待回拨"  # another call's callback is pending for this number
        if why:
            policy.refused(request, why)
            log.warning("call %s lost with its node: no callback for %s (%s)", ticket.linkedid,
                        mask_number(ticket.caller), why)
        ticket.callback = policy.ticket_view(request)
        return 0 if why else 1
