"""The supervisor's wallboard: per queue and per dialed line, live over server-sent events.

Everything comes from Redis, never from one engine's memory, so the board is right with any
number of engines sharing one Redis: seats (``ivr:seats``, the seat follower), callers
waiting (``ivr:queue:waiting``, the live follower), pending callbacks (``ivr:callbacks``) and
the service-level counters (``ivr:kpi:…``, written with each queue visit). Pub/sub notices
(``ivr:seats:changed``, ``ivr:live:changed``, :mod:`console.notices`) say when to recompute; one :class:`Wallboard`
per console process recomputes at most every :data:`DEBOUNCE` seconds and at least every
:data:`REFRESH` (wrap-up ends and waits grow without an event), and sends every browser the
whole snapshot. A browser that reconnects gets the current snapshot first, then the next
ones: there is no event to miss.

The snapshot itself is :func:`build_snapshot` (pure); the trend charts are inline SVG
(:func:`trend_svg`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, cast

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from console.notices import EVERYTHING, Notices, Stopping, next_item
from ivr.core.labels import session_window
from ivr.store import keyspace
from ivr.config import Settings
from tickets.store import TicketStore
from queues import kpi
from queues.agents import Membership, Seat
from queues.sessions import LEADER_QUEUE, SESSION_REASON, on_or_next
from queues.waiting import Waiting
from transfer.model import EMERGENCY_TRUNK, qualified_trunks
from transfer.trunk_watch import trunk_rows

log = logging.getLogger(__name__)

DEBOUNCE = 0.25  # s between recomputations: a burst of notices shares one (≤ 4 snapshots a second under load)
REFRESH = 5.0  # s: recomputed at least this often
KEEPALIVE = 15.0  # s: an SSE comment keeps proxies from closing an idle stream
TREND_BUCKETS = 24  # 5-minute buckets in a trend chart: the last two hours
BOARD_CHANNELS = frozenset({keyspace.SEATS_CHANGED, keyspace.LIVE_CHANGED, EVERYTHING[0]})
HELD = "held"  # a seat paused only by the leader session hold (queues/sessions.py): shown 非本场次, not 暂停
SEAT_STATES = ("available", "ringing", "talking", "wrapup", "paused", HELD, "unreachable")
SHOWN = ("offered", "answered", "answered_15", "answered_30", "abandoned", "callbacks", "overflowed",
         "answer_rate_15", "answer_rate_30", "abandon_rate", "avg_wait_s", "longest_wait_s")


@dataclass(frozen=True)
class Labels:
    """The buckets a snapshot reads: today's day bucket, the 5-minute buckets of the trend
    (oldest first); the last hour is the trend's last twelve."""

    day: str
    trend: tuple[str, ...]

    @property
    def last_hour(self) -> tuple[str, ...]:
        return self.trend[-3600 // kpi.BUCKET_SECONDS:]

    @classmethod
    def at(cls, now: float) -> "Labels":
        start = int(now) // kpi.BUCKET_SECONDS * kpi.BUCKET_SECONDS
        trend = tuple(datetime.fromtimestamp(start - i * kpi.BUCKET_SECONDS).strftime("%Y%m%d%H%M")
                      for i in reversed(range(TREND_BUCKETS)))
        return cls(datetime.fromtimestamp(now).strftime("%Y%m%d"), trend)


def build_snapshot(settings: Settings, seats: Mapping[str, Mapping[str, Any]], waiting: Iterable[Waiting],
                   callbacks: Iterable[Mapping[str, Any]], buckets: Mapping[str, Mapping[str, Mapping[str, str]]],
                   labels: Labels, now: float, disk: Mapping[str, str] | None = None,
                   trunks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The wallboard as plain data (JSON): ``queues`` and ``lines`` rows, ``platform`` totals;
    ``disk``: the recordings disk as the recording worker last measured it (``ivr:recording:disk``);
    ``trunks``: each node's trunks as its follower last saw them (``ivr:trunks``);
    ``agent_satisfaction``: each agent's survey today (:func:`agent_satisfaction`);
    ``leader_session``: the leader session on now or next today (:func:`leader_session`)."""
    waiting = [w for w in waiting if not w.stale(now)]  # (an Asterisk nobody follows left them)
    pending: dict[str, int] = {}
    for request in callbacks:
        of = str(request.get("queue") or "general")
        pending[of] = pending.get(of, 0) + 1
    board = [(Seat.from_json(data), data) for data in seats.values()]
    queues = []
    for name, q in settings.queues.items():
        row = _row(f"queue:{name}", name, q.title, [w for w in waiting if w.queue == name], buckets, labels, now)
        row["agents"] = _agents(name, board, now)
        row["callbacks_pending"] = pending.get(name, 0)
        queues.append(row)
    lines = []
    for number, entry in settings.numbers.items():
        here = [w for w in waiting if w.line == number]
        counted = any(buckets.get(f"line:{number}", {}).get(label) for label in (labels.day, *labels.trend))
        if here or counted or entry.mode == "main":
            lines.append(_row(f"line:{number}", number, entry.title, here, buckets, labels, now))
    logged_in = [seat for seat, _ in board if seat.queues]
    by_node: dict[str, int] = {}
    for w in waiting:  # one wallboard for the cluster: which Asterisk each caller waits on
        by_node[w.asterisk] = by_node.get(w.asterisk, 0) + 1
    return {
        "at": round(now, 3),
        "queues": queues,
        "lines": lines,
        "platform": {
            "waiting": len(waiting),
            "longest_wait_s": _longest(waiting, now),
            "agents_logged_in": len(logged_in),
            "callbacks_pending": sum(pending.values()),
            "waiting_by_node": dict(sorted(by_node.items())),
            "today": _totals((buckets.get(f"line:{n}", {}) for n in settings.numbers), (labels.day,)),
            "satisfaction_today": _survey((buckets.get(f"line:{n}", {}) for n in settings.numbers), labels.day),
            "last_hour": _totals((buckets.get(f"line:{n}", {}) for n in settings.numbers), labels.last_hour),
            "recording_disk": recording_disk(disk or {}, now),
        },
        # each seat's state and, talking or ringing, the node (AMI host:port) holding its call
        "seats": [{"agent": seat.agent, "state": board_state(seat, now), "node": str(data.get("node") or "")}
                  for seat, data in sorted(board, key=lambda b: b[0].agent)],
        "trunks": trunk_board(settings, trunks or {}, now),
        "agent_satisfaction": agent_satisfaction(settings, board, buckets, labels.day),
        "leader_session": leader_session(settings, waiting, board, now),
    }


def leader_session(settings: Settings, waiting: list[Waiting], board: list[tuple[Seat, Mapping[str, Any]]],
                   now: float) -> dict[str, Any] | None:
    """The leader session (领导接听) on now, else the next one today (``on`` false), with the leader
    queue's callers and seats, so the room sees who takes the leader's calls; None when neither.
    ``agents`` counts the seats that are the session's own (held ones apart, in ``held``: logged in
    but held for another session, so the room does not read them as leaders on a break), ``pauses``
    their own pauses by reason; ``window`` is the local time as staff read it (UTC+8 in production)."""
    local = datetime.fromtimestamp(now).astimezone()
    found = on_or_next(settings.sessions, local)
    if found is None:
        return None
    sid, on = found
    session, here = settings.sessions[sid], [w for w in waiting if w.queue == LEADER_QUEUE]
    window = session.window()
    agents = _agents(LEADER_QUEUE, board, now)
    held = agents.pop(HELD)
    agents["logged_in"] -= held
    pauses: dict[str, int] = {}
    for seat, _data in board:
        member = seat.queues.get(LEADER_QUEUE)
        if member is not None and _member_state(seat, member, now) == "paused":
            pauses[member.reason] = pauses.get(member.reason, 0) + 1
    return {"id": sid, "topic": session.topic, "on": on, "start": window.start.isoformat(),
            "end": window.end.isoformat(), "window": session_window(window.start, window.end, local.date()),
            "lines": list(session.lines), "waiting": len(here), "longest_wait_s": _longest(here, now),
            "agents": agents, "held": held, "pauses": dict(sorted(pauses.items()))}


def agent_satisfaction(settings: Settings, board: list[tuple[Seat, Mapping[str, Any]]],
                       buckets: Mapping[str, Mapping[str, Mapping[str, str]]], day: str) -> list[dict[str, Any]]:
    """Each agent's survey today (the ``agent:`` buckets, queues/kpi.py), for the supervisor who
    watches their agents: every agent asked today and every agent logged in now (a seat whose
    callers are never asked shows too), by seat; the name from the config (none for a seat no
    longer configured). Never on /metrics: one series per agent is too many."""
    today = {dimension.partition(":")[2]: _survey([mine], day)
             for dimension, mine in buckets.items() if dimension.startswith("agent:")}
    shown = {agent for agent, survey in today.items() if survey["survey_offered"]}
    shown |= {seat.agent for seat, _ in board if seat.queues}
    none = _survey([], day)
    return [{"agent": agent, "name": settings.agents[agent].name if agent in settings.agents else "",
             "satisfaction_today": today.get(agent, none)} for agent in sorted(shown)]


def trunk_board(settings: Settings, raw: Mapping[str, str], now: float) -> list[dict[str, Any]]:
    """The qualified trunks (sub-centers, the emergency trunk) each node has a state for: ``up``
    False while the gateway does not answer OPTIONS (a call for it fails at once)."""
    titles = {name: sub.title for name, sub in settings.subcenters.items()}
    if settings.emergency is not None:
        titles[EMERGENCY_TRUNK] = settings.emergency.title
    wanted = set(qualified_trunks(settings.subcenters, settings.emergency))
    return [{"trunk": r["trunk"], "title": titles[r["trunk"]], "node": r["asterisk"], "up": r["up"],
             "age_s": round(max(0.0, now - r["at"]), 1)} for r in trunk_rows(raw) if r["trunk"] in wanted]


def recording_disk(raw: Mapping[str, str], now: float) -> dict[str, Any] | None:
    """The recordings disk's tile: use, free bytes and the alarm (recording/worker.py writes them
    every sweep, ≤ 10 s); None before any engine measured it. ``age_s`` tells a stale reading:
    no engine holds the follow lease, so nobody measures. ``problem``: no file can be created there
    at all (no-inodes / not-writable), whatever the free space: calls go unrecorded."""
    try:
        total, free, at = int(raw["total"]), int(raw["free"]), float(raw.get("at") or 0)
    except (KeyError, ValueError):
        return None
    return {"total": total, "free": free, "used_ratio": round((total - free) / total, 4) if total > 0 else 1.0,
            "alarm": raw.get("alarm") == "1", "problem": raw.get("problem") or "", "age_s": round(max(0.0, now - at), 1)}


def _row(dimension: str, name: str, title: str, waiting: list[Waiting], buckets: Mapping[str, Mapping[str, Mapping[str, str]]],
         labels: Labels, now: float) -> dict[str, Any]:
    mine = buckets.get(dimension, {})
    trend = [kpi.sum_counters([mine.get(label) or {}]) for label in labels.trend]
    return {
        "name": name,
        "title": title,
        "waiting": len(waiting),
        "oldest_joined": min((w.joined for w in waiting), default=None),
        "longest_wait_s": _longest(waiting, now),
        "today": _totals([mine], (labels.day,)),
        "last_hour": _totals([mine], labels.last_hour),
        "satisfaction_today": _survey([mine], labels.day),
        "trend_svg": trend_svg([t["offered"] for t in trend], [t["answered_15"] for t in trend], title),
    }


def _totals(dimensions: Iterable[Mapping[str, Mapping[str, str]]], labels: Iterable[str]) -> dict[str, Any]:
    labels = tuple(labels)
    rates = kpi.with_rates(kpi.sum_counters(d.get(label) or {} for d in dimensions for label in labels))
    return {k: rates[k] for k in SHOWN}


def _survey(dimensions: Iterable[Mapping[str, Mapping[str, str]]], day: str) -> dict[str, Any]:
    """Today's satisfaction survey (queues/kpi.py): asked, rated, average, share satisfied, low ratings."""
    return kpi.with_shares(kpi.sum_survey(d.get(day) or {} for d in dimensions))


def _longest(waiting: list[Waiting], now: float) -> float:
    return round(max((now - w.joined for w in waiting), default=0.0), 1)


def _agents(queue: str, board: list[tuple[Seat, Mapping[str, Any]]], now: float) -> dict[str, int]:
    """Agents of one queue: logged in, and how many in each state (paused: in this queue; held:
    paused there by the leader session hold, whatever the seat does in other queues)."""
    counts = dict.fromkeys(("logged_in", *SEAT_STATES), 0)
    for seat, _data in board:
        member = seat.queues.get(queue)
        if member is None:
            continue
        counts["logged_in"] += 1
        state = _member_state(seat, member, now)
        counts[state if state in counts else "available"] += 1
    return counts


def _member_state(seat: Seat, member: Membership, now: float) -> str:
    """The seat's state in one queue: held there, paused there (unless talking or ringing: a pause
    mid-call takes effect after), else the seat's own."""
    state = seat.state(now)
    if _held(member):
        return HELD
    return "paused" if member.paused and state not in ("talking", "ringing") else state


def _held(member: Membership) -> bool:
    """Paused by the session hold (its reason, as the node says), and not in a call of this queue
    (a leader still talking to a session's caller when it ends is talking, not held)."""
    return member.paused and member.reason == SESSION_REASON and not member.in_call


def board_state(seat: Seat, now: float) -> str:
    """A seat's state as the board names it: :data:`HELD` for a seat whose only pauses are the
    session hold (a leader seat between its sessions: 非本场次, not 暂停), else :meth:`Seat.state`."""
    state = seat.state(now)
    return HELD if state == "paused" and all(_held(m) for m in seat.queues.values()) else state


def trend_svg(offered: list[int], within_15: list[int], title: str, width: int = 168, height: int = 36) -> str:
    """Calls offered per 5 minutes (grey bars) and of them answered within 15 s (green), oldest
    left; inline SVG (no script, no framework)."""
    n = max(len(offered), 1)
    top = max([*offered, 1])
    step = width / n
    bars = []
    for i, (total, good) in enumerate(zip(offered, within_15)):
        x = round(i * step, 1)
        for value, cls in ((total, "offered"), (good, "within15")):
            if value:
                h = max(1.0, round(value / top * (height - 2), 1))
                bars.append(f'<rect class="{cls}" x="{x}" y="{round(height - h, 1)}" width="{round(step - 1, 1)}" '
                            f'height="{h}"/>')
    label = escape(f"{title}：近两小时每5分钟呼入量（灰）与15秒内接通量（绿），最多{top}")
    return (f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{label}"><title>{label}</title>'
            f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" class="axis"/>{"".join(bars)}</svg>')


# --- reading Redis ----------------------------------------------------------------------------

class WallboardSource:
    """Reads what a snapshot needs from Redis (six round trips, whatever the number of calls)."""

    def __init__(self, redis: aioredis.Redis, tickets: TicketStore, settings: Callable[[], Settings]):
        self.redis, self.tickets, self.settings = redis, tickets, settings

    async def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        labels = Labels.at(now)
        seats = cast(dict[str, str], await self.redis.hgetall(keyspace.SEATS))
        waiting = cast(list[str], await self.redis.hvals(keyspace.QUEUE_WAITING))
        callbacks = cast(list[str], await self.redis.hvals(keyspace.CALLBACKS))
        buckets = await self.tickets.kpi_buckets((labels.day, *labels.trend), narrow={"agent": (labels.day,)})
        disk = cast(dict[str, str], await self.redis.hgetall(keyspace.RECORDING_DISK))
        trunks = cast(dict[str, str], await self.redis.hgetall(keyspace.TRUNKS))
        return build_snapshot(self.settings(), {a: json.loads(s) for a, s in seats.items()},
                              [Waiting.from_json(json.loads(w)) for w in waiting],
                              [json.loads(c) for c in callbacks], buckets, labels, now, disk, trunks)


class Wallboard:
    """One per console process: follows the notices, recomputes, fans snapshots out."""

    def __init__(self, source: WallboardSource, notices: Notices):
        self.source, self.notices = source, notices
        self.latest: dict[str, Any] | None = None
        self.sequence = 0
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    async def run(self) -> None:
        """Recompute on every notice that concerns the board (debounced) and every :data:`REFRESH` s."""
        last = 0.0
        async with self.notices.listener() as notices:
            while True:
                with contextlib.suppress(TimeoutError):
                    while (await asyncio.wait_for(notices.get(), REFRESH))[0] not in BOARD_CHANNELS:
                        pass  # a desk's own notice: not the board's business
                # the first notice after a quiet spell at once; a burst's others together, DEBOUNCE later
                await asyncio.sleep(max(0.0, last + DEBOUNCE - time.monotonic()))
                while not notices.empty():
                    notices.get_nowait()
                if self._listeners:
                    last = time.monotonic()
                    await self._publish()

    async def _publish(self) -> None:
        try:
            snapshot = await self.source.snapshot()
        except (RedisError, OSError) as exc:
            log.warning("wallboard: cannot read Redis (%s)", exc)
            return
        self.sequence += 1
        snapshot["seq"] = self.sequence
        self.latest = snapshot
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()  # a slow browser gets the newest snapshot, not a backlog
            queue.put_nowait(snapshot)

    @contextlib.asynccontextmanager
    async def listener(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    async def stream(self, request: web.Request, ended: asyncio.Event) -> web.StreamResponse:
        """The SSE endpoint: the state now (read fresh), then every later snapshot, until ``ended``
        (console/streams.py: the user signed out or changed, or the console stops)."""
        response = await open_event_stream(request)
        # the browser went away, or the console stops: either way the browser reconnects on its own
        with contextlib.suppress(ConnectionError, Stopping):
            async with self.listener() as queue:  # listening before the first read: nothing falls between
                first = await self.source.snapshot()
                first["seq"] = self.sequence
                await send_event(response, "snapshot", first, self.sequence)
                while True:
                    snapshot = await next_item(queue, ended, KEEPALIVE)
                    if snapshot is None:
                        await response.write(b": keepalive\n\n")
                        continue
                    await send_event(response, "snapshot", snapshot, int(snapshot["seq"]))
        return response


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 1000\n\n")  # reconnect after a second, then the state comes first again
    return response


async def send_event(response: web.StreamResponse, event: str, data: Any, event_id: int) -> None:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode())
