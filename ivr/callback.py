"""Queued callback over AMI: the adapter around :mod:`queues.callback`.

The dialplan does the waiting and the calling (asterisk-conf/extensions.conf, "Queued
callback"); the engine hears its ``UserEvent(IvrCallback)`` steps and:

- on ``requested`` (the caller pressed the key and hangs up): keeps one pending callback per
  number in Redis and originates the stand-in that holds the caller's place in the queue;
- on ``dialing`` / ``answered`` / ``result`` (a seat took the stand-in, the citizen answered, the
  attempt ended): writes the outcome on the ticket, and places the next attempt after
  ``retry_after`` or gives up after ``attempts``.

Nothing in an event is trusted: the number must be one the config lets a callback dial
(:func:`queues.callback.refusal`), and every value that goes into the Originate is checked
against its own shape first; a request that cannot be honoured is refused at once (the tracker
writes why on the ticket), never left pending to block that number's next request.

Several engines hear the same events: the one that wins an attempt's claim in Redis places it
and follows it. Requests live in Redis, so a restarted engine places the attempts that are due;
an attempt whose result nobody heard (the engine was down) is counted as lost after a while.

Capacity: stand-ins are started only while the node has room for them beside the citizens
dialing in (:mod:`ivr.callback_pace`); a stand-in Asterisk refuses anyway (its ``maxcalls``
reached meanwhile) is heard as a failed ``OriginateResponse`` for the worker's own ``ActionID``,
written on the ticket as a leg ``NODE_BUSY`` (节点繁忙，稍后重拨) and placed again after the queue's
``retry_after``, without using up one of the citizen's attempts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from datetime import datetime
from typing import Callable, Mapping, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.store import keyspace
from ivr.ami.client import AmiClient, AmiError
from ivr.callback_pace import calls_in_use, node_maxcalls
from ivr.core.callerid import normalize
from ivr.config import Settings
from ivr.core.masking import mask_number
from tickets.store import TicketStore
from ivr.store import RedisTarget, redis_client
from ivr.core.strict import NAME
from queues import callback as policy
from queues.callback import CallbackRequest
from tickets.model import Disposition, Ticket
from ivr.core.channel import endpoint_of

log = logging.getLogger(__name__)

LINKEDID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")  # Asterisk's: [systemname-]epoch.sequence
EPOCH = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
NAME_RE = re.compile(NAME)
LINE = re.compile(r"([0-9]{3,16})?")  # the number the citizen dialed (its recording rule goes along); "": unknown
MATTER = re.compile(r"([a-z]{1,20})?")  # the request type the IVR set ("": none)
HOLD = 3600  # s a stand-in may wait in the queue for a seat
LOST_AFTER = HOLD + 300  # s after which a placed attempt nobody reported on counts as lost
STAGE_REV = {"dialing": 1, "answered": 2, "result": 3}


class CallbackWorker:
    def __init__(self, settings: Settings, tickets: TicketStore, redis: RedisTarget, caller_key: bytes,
                 ami: Callable[[], AmiClient | None], live_settings: Callable[[], Settings] | None = None):
        self.live_settings = live_settings or (lambda: settings)
        self.tickets = tickets
        self.redis = redis_client(redis, timeout=2)
        self.caller_key = caller_key
        self.ami = ami
        self._events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._mine: set[tuple[str, int]] = set()  # attempts this engine placed (it follows them)
        self._tickets: dict[str, Ticket] = {}  # the tickets of callbacks this engine follows
        self._originates: dict[str, tuple[str, int]] = {}  # ActionID → the attempt it starts
        self._full = False  # the node had no room at the last look

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("UserEvent") == "IvrCallback" or (
                event.get("Event") == "OriginateResponse" and event.get("ActionID", "") in self._originates):
            self._events.put_nowait(dict(event))

    async def run(self) -> None:
        while True:
            try:
                event = await asyncio.wait_for(self._events.get(), 1.0)
            except TimeoutError:
                event = None
            try:
                if event is not None:
                    await self._handle(event)
                await self._place_due(time.time())
            except (RedisError, OSError) as exc:
                log.warning("callbacks: Redis unavailable (%s); retrying", exc)
                if event is not None:
                    self._events.put_nowait(event)
                await asyncio.sleep(1)

    async def close(self) -> None:
        await self.redis.aclose()

    # --- events ------------------------------------------------------------------------------

    async def _handle(self, event: dict[str, str]) -> None:
        if event.get("Event") == "OriginateResponse":
            await self._originate_response(event)
            return
        stage = event.get("Stage", "")
        if stage == "requested":
            await self._requested(event)
            return
        linkedid, attempt = event.get("Of", ""), event.get("Attempt", "")
        if not attempt.isdigit() or (linkedid, int(attempt)) not in self._mine:
            return  # another engine placed it and follows it
        attempt_no = int(attempt)
        request = await self._load(linkedid)
        if request is None:
            return
        queue = self.live_settings().queues.get(request.queue)
        rules = queue.callback if queue and queue.callback else None
        agent = endpoint_of(event.get("Agent", ""))
        if stage == "dialing":  # the leg: what Asterisk reports it dialed (filtered there, again here)
            policy.dialing(request, normalize(event.get("Number", "")), agent, time.time())
            await self._save(request)
        elif stage == "answered":
            policy.answered(request)
            await self._save(request)
        elif stage == "result" and rules is not None:
            self._mine.discard((linkedid, attempt_no))
            policy.result(request, event.get("DialStatus", ""), agent, time.time(), rules)
            await self._save(request)
            if request.status in (policy.ANSWERED, policy.FAILED):
                await self._release(request)
            log.info("callback for call %s, attempt %d: %s → %s", linkedid, attempt_no, event.get("DialStatus", ""),
                     request.status)
        await self._on_ticket(request, stage, attempt_no, agent)

    async def _originate_response(self, event: dict[str, str]) -> None:
        """Asterisk's answer to one of this worker's Originates. Reason 4 (answered): the stand-in
        runs. Anything else: it never started (the node's ``maxcalls``): a ``NODE_BUSY`` leg and
        the next try after ``retry_after``, not ``LOST_AFTER`` later."""
        linkedid, attempt = self._originates.pop(event.get("ActionID", ""), ("", 0))
        if event.get("Response") == "Success" and event.get("Reason") == "4":
            return
        if (linkedid, attempt) not in self._mine:
            return
        self._mine.discard((linkedid, attempt))
        request = await self._load(linkedid)
        queue = self.live_settings().queues.get(request.queue) if request else None
        if request is None or queue is None or queue.callback is None or request.status != policy.PLACED \
                or request.attempt != attempt or request.open_leg() is not None:
            return
        policy.result(request, policy.NODE_BUSY, "", time.time(), queue.callback)
        await self._save(request)
        if request.status == policy.FAILED:
            await self._release(request)
        log.warning("callback for call %s, attempt %d: Asterisk refused the stand-in (reason %s) → %s",
                    linkedid, attempt, event.get("Reason", "?"), request.status)
        await self._on_ticket(request, "result", attempt, "")

    async def _release(self, request: CallbackRequest) -> None:
        """The number may ask for a callback again."""
        await self.redis.delete(keyspace.callback_number(keyspace.caller_digest(request.number, self.caller_key)))

    async def _requested(self, event: dict[str, str]) -> None:
        linkedid, number, queue = event.get("Linkedid", ""), event.get("Number", ""), event.get("Queue", "general")
        queued_at, priority = event.get("QueuedAt", ""), event.get("Priority") or "0"
        line, matter = event.get("Line", ""), event.get("Matter", "")
        if not LINKEDID.fullmatch(linkedid) or not EPOCH.fullmatch(queued_at) or not priority.isdigit() \
                or not LINE.fullmatch(line) or not MATTER.fullmatch(matter):
            log.warning("callback request with a malformed call id, time, priority, line or matter: ignored")
            return
        why = self._refusal(number, queue)
        if why:  # the tracker writes it on the ticket; nothing is pending, nothing is placed
            log.warning("callback for call %s refused: %s", linkedid, why)
            return
        request = CallbackRequest(linkedid=linkedid, number=number, queue=queue, queued_at=queued_at,
                                  priority=int(priority), next_at=time.time(), line=line, matter=matter)
        if not await keep(self.redis, request, self.caller_key):
            log.info("callback for %s: one is already pending for this number", mask_number(number))

    # --- placing attempts ----------------------------------------------------------------------

    async def _place_due(self, now: float) -> None:
        raw = cast(dict[str, str], await self.redis.hgetall(keyspace.CALLBACKS))
        room: int | None = -1  # -1: not asked yet (asked once per pass, and only when one is due)
        for text in raw.values():
            request = CallbackRequest.from_json(json.loads(text))
            if request.status == policy.PENDING and request.next_at <= now:
                if room == -1:
                    room = await self._room()
                if room is None or room > 0:
                    if await self._place(request) and room is not None:
                        room -= 1
            elif request.status == policy.PLACED and request.next_at + LOST_AFTER < now:
                rules = self.live_settings().queues[request.queue].callback if request.queue in self.live_settings().queues else None
                if rules is not None and await self._claim(request.linkedid, f"lost-{request.attempt}"):
                    policy.result(request, "LOST", "", now, rules)
                    await self._save(request)
                    await self._on_ticket(request, "result", len(request.attempts), "")
            elif request.status in (policy.ANSWERED, policy.FAILED, policy.REFUSED):
                await self.redis.hdel(keyspace.CALLBACKS, request.linkedid)

    async def _room(self) -> int | None:
        """Stand-ins the node may start now (None: no cap; 0 while the node cannot be asked)."""
        settings, ami = self.live_settings(), self.ami()
        maxcalls = node_maxcalls(settings)
        if maxcalls is None:
            return None
        if ami is None or not ami.booted:
            return 0
        try:
            in_use = await calls_in_use(ami)
        except (AmiError, TimeoutError) as exc:
            log.warning("callbacks: cannot count the node's calls (%s); none placed now", exc)
            return 0
        room = policy.stand_in_room(maxcalls, settings.callbacks.headroom, in_use)
        if not room and not self._full:  # said once per spell, not every second
            log.info("callbacks: the node is full (%d of %d calls, %d kept for callers); waiting", in_use, maxcalls,
                     settings.callbacks.headroom)
        self._full = not room
        return room

    def _refusal(self, number: str, queue: str) -> str:
        settings = self.live_settings()
        return policy.refusal(settings.callers, policy.callback_queues(settings.queues), number, queue)

    async def _refuse(self, request: CallbackRequest, why: str) -> None:
        if not await self._claim(request.linkedid, "refused"):
            return  # another engine refuses it
        log.warning("callback for call %s given up: %s", request.linkedid, why)
        policy.refused(request, why)
        await self._save(request)
        await self._release(request)
        await self._on_ticket(request, "refused", request.attempt, "")

    async def _claim(self, linkedid: str, what: str) -> bool:
        return bool(await self.redis.set(keyspace.callback_claim(linkedid, what), "1", nx=True, ex=2 * HOLD))

    async def _place(self, request: CallbackRequest) -> bool:
        """Start the attempt's stand-in; whether it was sent."""
        ami, settings = self.ami(), self.live_settings()
        if ami is None or not ami.booted:
            return False  # retried on the next pass (a restarted node: once its dialplan is loaded)
        queue = settings.queues.get(request.queue)
        why = self._refusal(request.number, request.queue)
        if why or queue is None or queue.callback is None or not _plain(request):
            # a reload removed the queue's callback or narrowed the callable numbers: given up now,
            # not left pending (it would block the number's next request for a day)
            await self._refuse(request, why or "malformed request")
            return False
        attempt = request.attempt
        if not await self._claim(request.linkedid, str(attempt)):
            return False
        variables = {
            "_IVR_CALLBACK_OF": request.linkedid, "__IVR_QUEUED_AT": request.queued_at,
            "_IVR_CALLBACK_QUEUE": request.queue, "_IVR_CALLBACK_PRIO": str(request.priority),
            "_IVR_CALLBACK_ATTEMPT": str(attempt), "IVR_CALLBACK_NUMBER": request.number,
            "IVR_CALLBACK_RING": str(queue.callback.ring), "IVR_CALLBACK_HOLD": str(HOLD),
        }
        # the line first dialed and the matter: the callback is recorded by their rules (none known: the queue's)
        variables |= {k: v for k, v in (("_IVR_CALLBACK_LINE", request.line), ("_IVR_CALLBACK_MATTER", request.matter)) if v}
        action_id = policy.ACTION_PREFIX + secrets.token_hex(8)  # its OriginateResponse names it (never caller data)
        if len(self._originates) > 10_000:  # answers that never came (AMI reconnects): forgotten
            self._originates.clear()
        self._originates[action_id] = (request.linkedid, attempt)
        self._mine.add((request.linkedid, attempt))
        try:
            await ami.action({"Action": "Originate", "ActionID": action_id, "Channel": "Local/cb@ivr-callback-queue/n",
                              "Context": "ivr-callback-dial", "Exten": "s", "Priority": "1", "Async": "true",
                              "CallerID": f"callback <{request.number}>", "Timeout": "10000",
                              "Variable": ",".join(f"{k}={v}" for k, v in variables.items())}, as_list=False)
        except (AmiError, TimeoutError) as exc:
            log.warning("callback for call %s: originate failed (%s); retrying", request.linkedid, exc)
            self._originates.pop(action_id, None)
            self._mine.discard((request.linkedid, attempt))
            await self.redis.delete(keyspace.callback_claim(request.linkedid, str(attempt)))
            return False
        policy.placed(request)
        request.next_at = time.time()
        await self._save(request)
        log.info("callback for call %s: attempt %d waits in %s", request.linkedid, attempt, request.queue)
        return True

    # --- Redis and the ticket ----------------------------------------------------------------

    async def _load(self, linkedid: str) -> CallbackRequest | None:
        text = await self.redis.hget(keyspace.CALLBACKS, linkedid)
        return CallbackRequest.from_json(json.loads(text)) if text else None

    async def _save(self, request: CallbackRequest) -> None:
        await self.redis.hset(keyspace.CALLBACKS, request.linkedid, json.dumps(request.to_json()))

    async def _on_ticket(self, request: CallbackRequest, stage: str, attempt: int, agent: str) -> None:
        """The callback's progress on the call's ticket (written after its ``closed``)."""
        ticket = self._tickets.get(request.linkedid)  # its stages follow faster than group commits
        for _ in range(20):  # the call's own ticket may still be in its group-commit window
            if ticket is not None:
                break
            ticket = await self.tickets.get(request.linkedid)
            if ticket is None:
                await asyncio.sleep(0.5)
        if ticket is None:
            log.warning("callback for call %s: its ticket is not in Redis; the outcome is not on it", request.linkedid)
            return
        if request.status in (policy.ANSWERED, policy.FAILED, policy.REFUSED):
            self._tickets.pop(request.linkedid, None)
        else:
            self._tickets[request.linkedid] = ticket
        now = datetime.now().astimezone().isoformat(timespec="milliseconds")
        ticket.callback = {**(ticket.callback or {}), **policy.ticket_view(request)}
        if stage == "dialing" and agent:
            ticket.agent = agent  # the seat that took the caller's place, waiting for them
        if stage == "answered" and not ticket.answered and ticket.disposition != Disposition.NODE_LOST:
            # (a call lost with its node keeps saying so: ``callback`` tells how the call back went)
            ticket.answered, ticket.disposition = now, Disposition.ANSWERED.value
        ticket.note(now, f"callback {stage}", f"attempt {attempt}" + (f" {agent}" if agent else ""))
        self.tickets.write_nowait(ticket, f"callback:{attempt}:{stage}", rev=100 + 10 * attempt + STAGE_REV.get(stage, 0))


async def keep(redis: aioredis.Redis, request: CallbackRequest, caller_key: bytes) -> bool:
    """Keep a new request in Redis for whichever engine places callbacks; False when another
    call's callback is already pending for this number (a second request keeps the first one's
    place). Idempotent per call: the same request kept twice is one request."""
    digest = keyspace.caller_digest(request.number, caller_key)
    if not await redis.set(keyspace.callback_number(digest), request.linkedid, nx=True, ex=86_400):
        if await redis.get(keyspace.callback_number(digest)) != request.linkedid:
            return False
    await redis.hsetnx(keyspace.CALLBACKS, request.linkedid, json.dumps(request.to_json()))
    return True


def _plain(request: CallbackRequest) -> bool:
    """Every value the Originate carries has its own plain shape: no comma (a second variable),
    no CR/LF (a second AMI header), no caller text beyond the validated number."""
    return bool(LINKEDID.fullmatch(request.linkedid) and EPOCH.fullmatch(request.queued_at)
                and NAME_RE.fullmatch(request.queue) and normalize(request.number) == request.number
                and LINE.fullmatch(request.line) and MATTER.fullmatch(request.matter))
