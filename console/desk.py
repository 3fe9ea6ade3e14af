"""The agent desk: one agent's seat and the call offered to it, live over server-sent events.

The desk record (``ivr:desk:<agent>``) is written by whichever engine saw ``AgentCalled``
(:mod:`queues.follower`), before the agent's phone is answered, with a pub/sub notice on
``ivr:desk:changed``; the seat comes from ``ivr:seats`` (notice ``ivr:seats:changed``). A
browser gets the desk as it is now when it connects, then again after every notice for its
agent: a reconnect never misses a pop.

Actions from the page: log in, pause (a configured reason), unpause and log out, through the
seat-control AMI user (:class:`queues.seat_control.SeatControl`, as the softphone's feature codes do);
and the ticket's type, department and notes (:class:`queues.waiting.Amend`), written through the
ticket store (journaled, idempotent per phase, streamed as an ``updated:…`` ticket event) and
sent to the engines on ``ivr:desk:amends`` so the engine following the call keeps them in the
ticket it writes when the call closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import Any, AsyncIterator, Callable, cast

import redis.asyncio as aioredis
from aiohttp import web

from ivr.core.reasons_zh import explain
from ivr.store import keyspace
from ivr.ami.client import AmiClient, AmiError
from ivr.ami.users import manager_client
from ivr.cli import UsageError
from ivr.config import Settings
from queues.follower import send_amend, write_amend
from queues.seat_control import SeatControl, SeatError
from queues.wish_store import SeatWishes
from tickets.store import TicketStore
from supervision.store import NOTICE_FIELD, notice_for
from queues.agents import STATE_LABELS, Seat
from queues.waiting import Amend, desk_stub, request_label
from tickets.model import DISPOSITION_LABELS, Deadline, Disposition, Ticket
from console.notices import Notices, Stopping, next_item
from console.wallboard import KEEPALIVE, open_event_stream, send_event

log = logging.getLogger(__name__)


class DeskError(Exception):
    """An action refused, said in Mandarin for the page; ``detail``: an English reason from
    Asterisk or the ticket store that no Mandarin pattern knows, shown as a technical detail."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail

    @classmethod
    def because(cls, what: str, exc: Exception) -> "DeskError":
        """``what`` failed, the reason in Mandarin (ivr/core/reasons_zh/) or kept as a detail."""
        said = explain(str(exc))
        return cls(f"{what}：{said.text}", said.detail)


def departments(settings: Settings) -> list[str]:
    """The departments a case can be assigned to: those of the number plan (责任单位)."""
    return sorted({n.department for n in settings.numbers.values() if n.department})


class Desk:
    """Reads and changes one agent's desk (the console process keeps one of these)."""

    def __init__(self, redis: aioredis.Redis, notices: Notices, tickets: TicketStore, settings: Callable[[], Settings],
                 seat_control: Callable[[], contextlib.AbstractAsyncContextManager[SeatControl]],
                 deadline: Callable[[Ticket], Deadline] | None = None):
        """``seat_control``: a connected seat control for one action (:func:`seat_control_client`)."""
        self.redis, self.notices, self.tickets, self.settings = redis, notices, tickets, settings
        self._seat_control = seat_control
        self._deadline = deadline  # a type given after the call closed changes the deadline

    # --- reading ---------------------------------------------------------------------------

    async def state(self, agent: str) -> dict[str, Any]:
        """Everything the page shows: the seat, the call (offered / connected / ended / missed)
        with its ticket stub and the caller's earlier tickets, the choices of the forms."""
        settings = self.settings()
        raw_seat = cast(str | None, await self.redis.hget(keyspace.SEATS, agent))
        seat = Seat.from_json(json.loads(raw_seat)) if raw_seat else Seat(agent)
        seat_json = seat.to_json(datetime.now().timestamp())
        seat_json["label"] = STATE_LABELS.get(seat_json["state"], seat_json["state"])
        record, notice = cast(list[str | None], await self.redis.hmget(keyspace.desk(agent), ["doc", NOTICE_FIELD]))
        call = json.loads(record) if record else None
        return {
            "agent": agent,
            "name": settings.agents[agent].name if agent in settings.agents else agent,
            "seat": seat_json,
            "call": await self._call(call) if call else None,
            "pause_reasons": dict(settings.pause_reasons),
            # a supervisor on this call (supervision/store.py), shown when the configuration says so
            "supervision": notice_for(notice, call) if settings.supervision.notify_agent else None,
        }

    async def _call(self, record: dict[str, Any]) -> dict[str, Any]:
        stub = dict(record.get("stub") or {})
        ticket = await self.tickets.get(str(record.get("linkedid", "")))
        if ticket is not None:  # the stored ticket fills in what the engine did not know
            stored = desk_stub(ticket, ticket.linkedid, stub.get("queue", ticket.queue), float(record.get("offered_at", 0)))
            stub = {**stored, **{k: v for k, v in stub.items() if v not in ("", None, [])}}
            stub["number"] = ticket.number
            stub["request_type"] = ticket.request_type or stub.get("request_type", "")
            stub["department"], stub["notes"] = ticket.department, ticket.notes
            stub["disposition"] = DISPOSITION_LABELS.get(Disposition(ticket.disposition), "") if ticket.disposition else ""
        stub["request_label"] = request_label(str(stub.get("request_type", "")))
        stub["history"] = [await self._earlier(number) for number in stub.get("repeat_of") or []]
        return {"state": record.get("state", ""), "at": record.get("at"), "offered_at": record.get("offered_at"),
                "linkedid": record.get("linkedid", ""), "stub": stub}

    async def _earlier(self, number: str) -> dict[str, str]:
        """One of the caller's earlier tickets, as the desk lists it (no caller number)."""
        t = await self.tickets.by_number(number)
        if t is None:
            return {"number": number}
        return {"number": number, "received": t.received[:16].replace("T", " "), "request_label": request_label(t.request_type),
                "disposition": DISPOSITION_LABELS.get(Disposition(t.disposition), "") if t.disposition else "",
                "status": t.status}

    async def stream(self, request: web.Request, agent: str, ended: asyncio.Event) -> web.StreamResponse:
        """The SSE endpoint of one desk: its state now, then again after each notice for it, until
        ``ended`` (console/streams.py: the user signed out or changed, or the console stops)."""
        response = await open_event_stream(request)
        sequence = 0
        # the browser went away, or the console stops: either way the browser reconnects on its own
        with contextlib.suppress(ConnectionError, Stopping):
            async with self.notices.listener() as notices:  # before the first read: nothing falls between
                await send_event(response, "desk", await self.state(agent), sequence)
                while True:
                    notice = await next_item(notices, ended, KEEPALIVE)
                    if notice is None:
                        await response.write(b": keepalive\n\n")
                        continue
                    if notice[1] in (agent, "*"):  # its desk or its seat (or every seat) changed
                        sequence += 1
                        await send_event(response, "desk", await self.state(agent), sequence)
        return response

    # --- actions ---------------------------------------------------------------------------

    async def seat(self, agent: str, action: str, reason: str = "") -> str:
        """Log in / log out / pause (reason: its digit) / unpause; the message for the page."""
        settings = self.settings()
        try:
            async with self._seat_control() as control:
                return await self._seat_action(control, settings, agent, action, reason)
        except (SeatError, AmiError, TimeoutError, OSError) as exc:
            raise DeskError.because("座席操作失败", exc) from None

    @staticmethod
    async def _seat_action(control: SeatControl, settings: Settings, agent: str, action: str, reason: str) -> str:
        if action == "login":
            queues = await control.login(agent)
            return f"已签入：{'、'.join(settings.queues[q].title if q in settings.queues else q for q in queues)}"
        if action == "logout":
            await control.logout(agent)
            return "已签出"
        if action == "pause":
            label = settings.pause_reasons.get(reason)
            if label is None:
                raise DeskError(f"未知的暂停原因：{reason}")
            await control.pause(agent, label)
            return f"已暂停（{label}）"
        if action == "unpause":
            await control.unpause(agent)
            return "已恢复接听"
        raise DeskError(f"未知操作：{action}")

    async def amend(self, agent: str, linkedid: str, request_type: str, department: str, notes: str) -> Ticket:
        """Set the ticket's type, department and notes: only on a call offered to this agent."""
        settings = self.settings()
        try:
            amend = Amend.checked(linkedid, agent, request_type, department, notes, set(departments(settings)))
        except ValueError as exc:
            raise DeskError(str(exc) if "未知" in str(exc) or "过长" in str(exc) else f"未知的诉求类型：{request_type}") from None
        record = cast(str | None, await self.redis.hget(keyspace.desk(agent), "doc"))
        ticket = await self.tickets.get(linkedid)
        offered = record is not None and json.loads(record).get("linkedid") == linkedid
        if ticket is None or not (offered or ticket.agent == agent):
            raise DeskError("只能修改分配给本座席的工单")
        try:
            await write_amend(self.tickets, ticket, amend, await self.tickets.revision(linkedid), self._deadline)
        except ValueError as exc:  # a console without the caller key (IVR_CALLER_KEY) cannot index tickets
            raise DeskError.because("无法保存工单", exc) from None
        await send_amend(self.redis, amend)
        await self.tickets.drain()
        await self.redis.publish(keyspace.DESK_CHANGED, agent)
        return ticket


@contextlib.asynccontextmanager
async def seat_control_client(settings: Settings) -> AsyncIterator[SeatControl]:
    """A connected seat control over the seat-control AMI user (IVR_AMI_SEATS_SECRET)."""
    client: AmiClient = manager_client(settings, settings.ami.seats_username, settings.ami.seats_secret,
                                       "IVR_AMI_SEATS_SECRET", error=UsageError)  # as before the move: the CLI's error
    await client.connect()
    wishes = SeatWishes(settings.redis)  # the action is every node's (queues/seat_applier.py)
    try:
        yield SeatControl(client, settings, wishes)
    finally:
        client.close()
        await wishes.close()
