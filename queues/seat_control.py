"""Seats over AMI: the follower that keeps agents' state in Redis, and the control that logs
agents in and out and pauses them (the adapters around :mod:`queues.agents`).

- :class:`SeatFollower` hears ``QueueMember*`` events on the engine's AMI session and, after
  every login (first, reconnect, engine restart), rebuilds every seat from ``QueueStatus``:
  Asterisk's app_queue is the truth, Redis only publishes it. Writes are coalesced and retried,
  and every seat is written again every few seconds, so a dead or restarted Redis delays the
  board and loses nothing.
- :class:`SeatControl` speaks for an agent through the seat-control AMI user (write class
  ``agent`` only): ``QueueAdd`` to every queue of the agent's skills with its penalty,
  ``QueueRemove``, ``QueuePause`` with a reason. The softphone's feature codes do the same in
  the dialplan (asterisk-conf/extensions.conf, ``[from-agents]``). Given the seat wishes
  (:mod:`queues.wish_store`), it writes the wish first, so every node's applier
  (:mod:`queues.seat_applier`) makes the same change, then acts on its own node at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Callable, Mapping

from redis.exceptions import RedisError

from ivr.ami.client import AmiClient, AmiError
from ivr.asterisk_conf import asterisk_queue, config_queue
from ivr.config import Settings
from queues.store import SeatStore
from queues.agents import MEMBER_EVENTS, AgentBoard, Seat
from queues.model import memberships, wrapups
from queues.sessions import held_queues
from queues.wish import Change, Kind, Refused
from queues.wish_store import SeatWishes

log = logging.getLogger("ivr.seats")  # the name log configs filter on, from before the move

FLUSH_INTERVAL = 0.2  # s: seat changes are written at most this often (coalesced per agent)
REPUBLISH_INTERVAL = 10.0  # s: every seat is written again this often


class SeatFollower:
    def __init__(self, settings: Settings, store: SeatStore, live_settings: Callable[[], Settings] | None = None):
        self.settings = settings
        self.live_settings = live_settings or (lambda: settings)
        self.store = store
        self.board = AgentBoard(settings.agents, config_queue, wrapups(settings.queues))
        self._dirty: set[str] = set()
        self._logins: asyncio.Queue[AmiClient] = asyncio.Queue()
        self._wake = asyncio.Event()
        self.reconciled = asyncio.Event()  # set after the first full snapshot is in Redis

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") not in MEMBER_EVENTS:
            return
        for seat in self.board.handle(event, time.time()):
            self._dirty.add(seat.agent)
        self._wake.set()

    def on_login(self, ami: AmiClient) -> None:
        self._logins.put_nowait(ami)
        self._wake.set()

    async def run(self) -> None:
        last_full = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REPUBLISH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            if time.monotonic() - last_full >= REPUBLISH_INTERVAL:
                # all seats again now and then: a Redis restarted empty must not hide them
                last_full = time.monotonic()
                self._dirty.update(self.board.seats)
            live = self.live_settings()
            if live is not self.settings:  # reloaded: agents may have come or gone
                self.settings = live
                self.board.set_agents(live.agents, wrapups(live.queues))
            while not self._logins.empty():
                await self._reconcile(self._logins.get_nowait())
            await self._flush()
            await asyncio.sleep(FLUSH_INTERVAL)

    async def _reconcile(self, ami: AmiClient) -> None:
        try:
            listing = await ami.action({"Action": "QueueStatus"}, as_list=True)
        except (AmiError, TimeoutError) as exc:
            log.warning("seats: QueueStatus failed (%s); they are rebuilt at the next login", exc)
            return
        rows = [dict(e) for e in listing if e.get("Event") == "QueueMember"]
        now = time.time()
        self.board.reconcile(rows, now)
        try:
            await self.store.replace({a: seat.to_json(now) for a, seat in self.board.seats.items()})
        except (RedisError, OSError) as exc:
            log.warning("seats: Redis unavailable (%s); retrying", exc)
            self._dirty.update(self.board.seats)
            self._wake.set()
            return
        self._dirty.clear()
        self.reconciled.set()
        staffed = sum(1 for s in self.board.seats.values() if s.queues)
        log.info("seats reconciled with Asterisk: %d of %d agent(s) logged in", staffed, len(self.board.seats))

    async def _flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        now = time.time()
        seats = {a: self.board.seats[a].to_json(now) for a in dirty if a in self.board.seats}
        try:
            await self.store.save(seats)
        except (RedisError, OSError) as exc:
            log.warning("seats: Redis unavailable (%s); retrying", exc)
            self._dirty |= dirty
            self._wake.set()


class SeatError(Exception):
    """An agent action Asterisk refused, said plainly."""


class SeatControl:
    """Agent actions through the seat-control AMI user."""

    def __init__(self, ami: AmiClient, settings: Settings, wishes: SeatWishes | None = None):
        """``wishes``: where the action is written for every node (None: this node only)."""
        self.ami = ami
        self.settings = settings
        self.wishes = wishes

    async def _wish(self, agent: str, kind: Kind, reason: str = "") -> None:
        if self.wishes is None:
            return
        queues = memberships(self.settings.agents[agent], self.settings.queues) if kind == "login" else {}
        try:
            await self.wishes.change(agent, Change(kind, time.time(), queues=queues, reason=reason))
        except Refused as exc:
            raise SeatError(str(exc)) from None
        except (RedisError, OSError) as exc:
            raise SeatError(f"{agent}: the seat wish cannot be written to Redis ({exc}); nothing changed") from None

    def _agent(self, agent: str) -> str:
        if agent not in self.settings.agents:
            raise SeatError(f"unknown agent {agent!r} (agents are defined in config/queues.yaml)")
        return f"PJSIP/{agent}"

    async def login(self, agent: str) -> list[str]:
        """Join every queue of the agent's skills; returns the queues joined (already in: kept).
        A queue a leader session holds it in (queues/sessions.py) is joined paused, with the
        hold's reason: no call rings it before the node's seat applier would have held it."""
        interface = self._agent(agent)
        await self._wish(agent, "login")
        held = held_queues(self.settings.sessions, agent, datetime.now().astimezone())
        joined = []
        for queue, penalty in memberships(self.settings.agents[agent], self.settings.queues).items():
            base = {"Queue": asterisk_queue(queue), "Interface": interface}
            try:
                # as_list=False: panoramisk takes "Added interface to queue" for the start of a list
                await self.ami.action({"Action": "QueueAdd", **base, "Penalty": str(penalty), "MemberName": agent,
                                       "Paused": "true" if queue in held else "false"}, as_list=False)
                if queue in held:
                    await self.ami.action({"Action": "QueuePause", **base, "Paused": "true", "Reason": held[queue]})
            except AmiError as exc:
                if "Already there" not in str(exc):
                    raise SeatError(f"{agent}: cannot join {queue}: {exc}") from None
            joined.append(queue)
        return joined

    async def logout(self, agent: str) -> list[str]:
        interface = self._agent(agent)
        await self._wish(agent, "logout")
        left = []
        for queue in memberships(self.settings.agents[agent], self.settings.queues):
            try:
                await self.ami.action({"Action": "QueueRemove", "Queue": asterisk_queue(queue), "Interface": interface})
                left.append(queue)
            except AmiError as exc:
                if "Not there" not in str(exc):
                    raise SeatError(f"{agent}: cannot leave {queue}: {exc}") from None
        return left

    async def pause(self, agent: str, reason: str) -> None:
        await self._pause(agent, True, reason)

    async def unpause(self, agent: str) -> None:
        await self._pause(agent, False, "")

    async def _pause(self, agent: str, paused: bool, reason: str) -> None:
        interface = self._agent(agent)
        await self._wish(agent, "pause" if paused else "unpause", reason)
        action = {"Action": "QueuePause", "Interface": interface, "Paused": "true" if paused else "false"}
        if reason:
            action["Reason"] = reason
        try:
            await self.ami.action(action)
        except AmiError as exc:
            raise SeatError(f"{agent}: not logged in ({exc})") from None

    async def status(self) -> dict[str, Seat]:
        """Every seat as Asterisk reports it now (``QueueStatus``), without the engine."""
        listing = await self.ami.action({"Action": "QueueStatus"}, as_list=True)
        board = AgentBoard(self.settings.agents, config_queue, wrapups(self.settings.queues))
        board.reconcile([dict(e) for e in listing if e.get("Event") == "QueueMember"], time.time())
        return board.seats

