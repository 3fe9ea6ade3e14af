"""The seat applier: one per Asterisk node, run by the holder of that node's ``follow`` lease
(ivr/duties.py), keeps the node's app_queue as the seat wishes in Redis say (:mod:`queues.wish`,
docs/cluster.md "Agents across nodes").

Both directions:

- **facts → wishes**: the node's dialplan says ``UserEvent(IvrSeat, Action: login|logout|pause|
  unpause)`` after a softphone's ``*71``…``*74`` acted on this node, and app_queue says
  ``AgentComplete`` after a call; the applier (fed by the follower's AMI session, lease-gated)
  writes them into the wish (wrap-up: ``wrap_until`` = the call's end + the queue's wrap-up).
  Writes wait and retry while Redis is away, and go before anything is applied.
- **wishes → the node**: a pub/sub notice names the seat whose wish changed; a catch-up poll
  (every :data:`POLL` s) finds changes whose notice was lost (``seq`` above the one applied) and
  wrap-up pauses that ran out; after every AMI login (first, reconnect after an Asterisk
  restart, lease gain) the whole node is reconciled from ``QueueStatus``. Each seat is made
  right with :func:`queues.wish.plan` through the seat-control AMI user (``QueueAdd``,
  ``QueueRemove``, ``QueuePause``). A seat that has no wish yet is left as the node has it.
- **the leader sessions** (queues/sessions.py, docs/sessions.md): the leader queue rings only the
  seats of the session on now, so every other seat's membership there is held paused
  (``非本场次``; a seat without a wish too). The seats serving the leader queue are looked at
  again at each session's start and end and after a reload (the sessions may have moved), a seat
  whenever the node says it joined or was unpaused in a held queue (``*71``, ``*74``, a log-in on
  another path), and the whole node after every AMI login: each made right from what the node
  holds now, never from having seen the edge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from redis.exceptions import RedisError

from ivr.ami.client import AmiClient, AmiError
from ivr.asterisk_conf import asterisk_queue, config_queue
from ivr.config import Settings
from ivr.core.channel import endpoint_of
from ivr.store import keyspace
from queues.agents import agent_of
from queues.model import memberships, serving
from queues.sessions import LEADER_QUEUE, SESSION_REASON, held_queues, next_edge
from queues.wish import KINDS, WRAPUP_REASON, Change, Member, Refused, SeatWish, Step, Wanted, hold, plan, wanted
from queues.wish_store import SeatWishes

log = logging.getLogger("ivr.seats")

POLL = 5.0  # s: wishes are read whole this often (a lost notice, a wrap-up that ended)
RETRY = 1.0  # s after a Redis or AMI failure


def change_of(event: Mapping[str, str], settings: Settings, node: str) -> tuple[str, Change] | None:
    """The wish change an AMI event states (None: none, or not a configured seat's). Every
    value is checked against the configuration: a UserEvent's text is never trusted."""
    at = _epoch(event)
    if event.get("Event") == "AgentComplete":
        agent = event.get("MemberName") or endpoint_of(event.get("Interface", ""))
        queue = settings.queues.get(config_queue(event.get("Queue", "")))
        if agent not in settings.agents or queue is None or not queue.wrapup:
            return None
        return agent, Change("wrapup", at, until=at + queue.wrapup, node=node)
    if event.get("Event") != "UserEvent" or event.get("UserEvent") != "IvrSeat":
        return None
    agent, kind = event.get("Seat", ""), event.get("Action", "")
    if agent not in settings.agents or kind not in KINDS or kind == "wrapup":
        return None
    if kind == "login":
        return agent, Change("login", at, queues=memberships(settings.agents[agent], settings.queues))
    if kind == "pause":
        reason = event.get("Reason", "")
        return (agent, Change("pause", at, reason=reason)) if reason in settings.pause_reasons.values() else None
    return agent, Change(kind, at)  # logout or unpause (checked against KINDS above)


def _epoch(event: Mapping[str, str]) -> float:
    try:
        return float(event.get("Timestamp") or time.time())
    except ValueError:
        return time.time()


def members_of(rows: list[Mapping[str, str]], agents: Mapping[str, Any]) -> dict[str, dict[str, Member]]:
    """``QueueStatus``'s member rows per configured agent: configured queue → membership."""
    found: dict[str, dict[str, Member]] = {a: {} for a in agents}
    for row in rows:
        agent = agent_of(row)
        if agent in found:
            paused = row.get("Paused") == "1"
            found[agent][config_queue(row.get("Queue", ""))] = Member(
                int(row.get("Penalty") or 0), paused, row.get("PausedReason", "") if paused else "")
    return found


def checked(want: Wanted, settings: Settings) -> Wanted | None:
    """``want`` if every value in it is configured (a queue, a pause reason), else None: what
    reaches an AMI header comes from the configuration, never from Redis as it stands."""
    reasons = {*settings.pause_reasons.values(), WRAPUP_REASON}
    if any(q not in settings.queues for q in want.queues) or (want.paused and want.reason not in reasons):
        return None
    return want


def held(settings: Settings, agent: str, now: float) -> dict[str, str]:
    """The queues the session rule holds ``agent`` paused in at ``now`` (queues/sessions.py)."""
    return held_queues(settings.sessions, agent, datetime.fromtimestamp(now).astimezone())


def unheld_in(event: Mapping[str, str], settings: Settings, now: float) -> str | None:
    """The configured seat a ``QueueMemberAdded``/``QueueMemberPause`` event shows unpaused in a
    queue the session rule holds it in (joined or unpaused on any path): it must be held again."""
    if event.get("Event") not in ("QueueMemberAdded", "QueueMemberPause") or event.get("Paused") != "0":
        return None
    agent = agent_of(event)
    if agent not in settings.agents or config_queue(event.get("Queue", "")) not in held(settings, agent, now):
        return None
    return agent


class SeatApplier:
    """Wishes onto this node's app_queue, and this node's seat facts into wishes."""

    def __init__(self, settings: Callable[[], Settings], wishes: SeatWishes, node: str,
                 seat_ami: Callable[[], AmiClient | None]):
        """``node``: this Asterisk as the leases name it (``host:port``); ``seat_ami``: a new,
        unconnected client as the seat-control user (None: no secret, nothing is applied)."""
        self.settings, self.wishes, self.node, self._seat_ami = settings, wishes, node, seat_ami
        self._pending: list[tuple[str, Change]] = []
        self._dirty: set[str] = set()
        self._applied: dict[str, int] = {}  # agent → the seq last made true on this node
        self._wake_at: dict[str, float] = {}  # agent → when its wanted state changes by itself
        self._edge_at = 0.0  # the next session start or end (epoch; 0: none ahead): leader seats again
        self._seen: Settings | None = None  # the settings the sessions were last read from
        self._resync = False
        self._wake = asyncio.Event()

    # --- inputs from the follower's AMI session (lease-gated; never block, never raise) --------

    def on_event(self, event: Mapping[str, str]) -> None:
        try:
            settings = self.settings()
            found = change_of(event, settings, self.node)
            unheld = unheld_in(event, settings, time.time())
        except Exception:
            log.exception("seat applier failed on a %s event", event.get("Event"))
            return
        if found is not None:
            self._pending.append(found)
            self._wake.set()
        if unheld is not None:
            self._dirty.add(unheld)
            self._wake.set()

    def reloaded(self) -> None:
        """New settings went live: look at once (the loop reconciles the node when they differ)."""
        self._wake.set()

    # --- the loop (while the follow lease is held) ----------------------------------------------

    async def run(self) -> None:
        ami = self._seat_ami()
        if ami is None:
            log.warning("seat applier off: no seat-control AMI secret (IVR_AMI_SEATS_SECRET); "
                        "seat wishes reach this node only through its own feature codes")
            await asyncio.Event().wait()
            return
        ami.on_login(self._on_login)
        notices = asyncio.create_task(self._listen())
        try:
            await ami.connect_retrying(RETRY, log, "seat applier: ")
            last_poll = 0.0
            while True:
                await self._write_pending()
                if self.settings() is not self._seen:  # reloaded: the sessions may have moved
                    self._sessions_changed()
                if ami.connected:
                    if self._resync:
                        self._resync = False
                        last_poll = time.monotonic()
                        await self._reconcile_all(ami)
                    elif time.monotonic() - last_poll >= POLL:
                        last_poll = time.monotonic()
                        await self._catch_up()
                    await self._apply_dirty(ami)
                await self._sleep()
        finally:
            notices.cancel()
            ami.close()

    def _on_login(self, _ami: AmiClient) -> None:
        self._resync = True
        self._wake.set()

    def _sessions_changed(self) -> None:
        """The seats the session rule governs (those serving the leader queue) are made right
        again; the next session start or end is noted."""
        self._seen = settings = self.settings()
        edge = next_edge(settings.sessions, datetime.now().astimezone())
        self._edge_at = edge.timestamp() if edge else 0.0
        self._dirty.update(serving(LEADER_QUEUE, settings.agents, settings.queues))
        self._wake.set()

    async def _sleep(self) -> None:
        now = time.time()
        soonest = min([POLL, *(max(0.0, at - now) for at in self._wake_at.values())])
        if self._edge_at:
            soonest = min(soonest, max(0.0, self._edge_at - now))
        try:
            await asyncio.wait_for(self._wake.wait(), soonest)
        except TimeoutError:
            pass
        self._wake.clear()
        now = time.time()
        if self._edge_at and self._edge_at <= now:  # a session starts or ends
            self._sessions_changed()
        for agent, at in list(self._wake_at.items()):
            if at <= now:
                del self._wake_at[agent]
                self._dirty.add(agent)

    async def _listen(self) -> None:
        """Wish notices; on any failure the catch-up poll covers the gap until resubscribed."""
        while True:
            pubsub = self.wishes.redis.pubsub()
            try:
                await pubsub.subscribe(keyspace.SEAT_WISH_CHANGED)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                    if message is not None:
                        self._dirty.add(str(message["data"]))
                        self._wake.set()
            except (RedisError, OSError) as exc:
                log.warning("seat applier: wish notices lost (%s); resubscribing", exc)
                await asyncio.sleep(RETRY)
            finally:
                await pubsub.aclose()

    async def _write_pending(self) -> None:
        while self._pending:
            agent, change = self._pending[0]
            try:
                await self.wishes.change(agent, change)
            except Refused as exc:
                log.info("seat wish: %s %s ignored (%s)", change.kind, agent, exc)
            except (RedisError, OSError) as exc:
                log.warning("seat applier: Redis unavailable (%s); the wish is written when it answers", exc)
                await asyncio.sleep(RETRY)
                self._wake.set()
                return
            self._pending.pop(0)

    async def _catch_up(self) -> None:
        try:
            wishes = await self.wishes.all()
        except (RedisError, OSError) as exc:
            log.warning("seat applier: cannot read wishes (%s)", exc)
            return
        self._dirty.update(a for a, w in wishes.items() if self._applied.get(a) != w.seq)

    async def _reconcile_all(self, ami: AmiClient) -> None:
        """The whole node against every wish and the session rule (after an AMI login: the node
        may have restarted)."""
        agents = self.settings().agents
        fixed = 0
        try:
            wishes = await self.wishes.all()
            members = members_of(await self._members(ami, ""), agents)
            for agent in agents:
                wish = wishes.get(agent, SeatWish(agent))
                fixed += await self._make_true(ami, wish, members[agent])
        except (RedisError, OSError, AmiError, TimeoutError) as exc:  # e.g. queues not loaded yet
            log.warning("seat applier: node not reconciled (%s); retrying", exc)
            self._resync = True
            await asyncio.sleep(RETRY)
            return
        self._dirty.difference_update(agents)
        log.info("seat applier: node %s reconciled with %d seat wish(es), %d action(s)", self.node, len(wishes), fixed)

    async def _apply_dirty(self, ami: AmiClient) -> None:
        agents = self.settings().agents
        while self._dirty:
            agent = self._dirty.pop()
            if agent not in agents:
                continue
            try:
                wish = await self.wishes.get(agent)
                rows = await self._members(ami, f"PJSIP/{agent}")
                await self._make_true(ami, wish, members_of(rows, {agent: None})[agent])
            except (RedisError, OSError, AmiError, TimeoutError) as exc:
                log.warning("seat applier: %s not applied (%s); retrying", agent, exc)
                self._dirty.add(agent)
                await asyncio.sleep(RETRY)
                return

    async def _members(self, ami: AmiClient, member: str) -> list[Mapping[str, str]]:
        action = {"Action": "QueueStatus", **({"Member": member} if member else {})}
        listing = await ami.action(action, as_list=True)
        return [dict(e) for e in listing if e.get("Event") == "QueueMember"]

    async def _make_true(self, ami: AmiClient, wish: SeatWish, members: dict[str, Member]) -> int:
        """Apply the wish (or, with none, only the session rule's hold); the number of actions."""
        settings, now = self.settings(), time.time()
        holds = held(settings, wish.agent, now)
        want, wake = wanted(wish, self.node, now, holds)
        safe = checked(want, settings)
        if safe is None:
            log.warning("seat applier: %s's wish names an unknown queue or pause reason; not applied", wish.agent)
            self._applied[wish.agent] = wish.seq
            return 0
        steps = plan(safe, members) if wish.seq else hold(members, holds, SESSION_REASON)
        for step in steps:
            await self._do(ami, wish.agent, step)
        self._applied[wish.agent] = wish.seq
        if wake:
            self._wake_at[wish.agent] = wake
        else:
            self._wake_at.pop(wish.agent, None)
        if steps:
            log.info("seat applier: %s on %s: %s", wish.agent, self.node,
                     ", ".join(f"{s.action} {s.queue}" for s in steps))
        return len(steps)

    async def _do(self, ami: AmiClient, agent: str, step: Step) -> None:
        base = {"Queue": asterisk_queue(step.queue), "Interface": f"PJSIP/{agent}"}
        if step.action == "add":
            action = {"Action": "QueueAdd", **base, "Penalty": str(step.penalty), "MemberName": agent,
                      "Paused": "true" if step.paused else "false"}
        elif step.action == "remove":
            action = {"Action": "QueueRemove", **base}
        else:
            action = {"Action": "QueuePause", **base, "Paused": "true" if step.action == "pause" else "false",
                      **({"Reason": step.reason} if step.reason else {})}
        try:
            await ami.action(action, as_list=False)
        except AmiError as exc:
            if not any(s in str(exc) for s in ("Already there", "Not there")):
                raise


def seat_applier(settings: Callable[[], Settings], node: str) -> SeatApplier:
    """The engine's applier for ``node``, speaking as the seat-control AMI user (its secret from
    the environment, as the console's seat buttons; without it the applier stays off)."""
    def seat_ami() -> AmiClient | None:
        s = settings()
        if s.ami.seats_secret is None:
            return None
        return AmiClient(s.ami.host, s.ami.port, s.ami.seats_username, s.ami.seats_secret.get_secret_value(), events="off")

    return SeatApplier(settings, SeatWishes(settings().redis), node, seat_ami)
