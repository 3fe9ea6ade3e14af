"""Transfers of calls in progress through the engine: ``ivr transfer`` and the agent desk's
transfer button (the web console) call :func:`transfer_call`.

The AMI adapter of :mod:`transfer.control`: it lists the call's channels (``Status``), lets the
hotline logic choose which moves, and moves it into the generated transfer contexts of the
dialplan (``[ivr-transfers]``, ``[ivr-bridge]``), so the target is dialed exactly as an agent's
own transfer is, with its result, SIP cause and the truthful fallback on the ticket (written by
the call tracker from Asterisk's events, not here). It speaks as the transfer AMI user
(``ami.transfer_username``, write class ``call`` only, no events).

:class:`HoursPublisher`, as the same user, keeps one global variable per sub-center with hours
(:func:`closed_variable`) in Asterisk: the agents' own transfers (dial, REFER, atxfer) honor
the hours through it, since the dialplan cannot tell working days (transfer/hours.py does).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, cast

from redis.exceptions import RedisError

from ivr.ami.client import AmiClient, AmiError
from ivr.ami.users import manager_client, narrow_session
from ivr.config import Settings
from ivr.core.calendar import HolidayCalendar
from ivr.store import keyspace
from transfer.control import (BRIDGE_CONTEXT, TRANSFERS_CONTEXT, Leg, TransferError, TransferResult, closed_variable,
                              find_call, plan_move, refuse_closed, resolve)
from transfer.hours import closed_now
from transfer.where import node_amis, node_named, node_of_linkedid

if TYPE_CHECKING:
    from tickets.store import TicketStore

__all__ = ["HoursPublisher", "TransferError", "TransferResult", "call_node", "closed_variable", "transfer_call",
           "transfer_client"]

log = logging.getLogger("ivr.transfers")


def transfer_client(settings: Settings, node: str = "") -> AmiClient:
    """An AMI client (not connected) as the transfer user, to ``node`` (a configured node's name;
    "": this engine's own Asterisk); TransferError without its secret."""
    at = node_amis(settings)[node] if node else None
    return manager_client(settings, settings.ami.transfer_username, settings.ami.transfer_secret,
                          "IVR_AMI_TRANSFER_SECRET", error=TransferError, at=at)


async def call_node(call: str, settings: Settings, tickets: "TicketStore") -> str:
    """The node that holds ``call`` (a linkedid, a ticket number or the agent talking on it), as
    transfer.where reads it: "" without a cluster (this engine's Asterisk holds every call)."""
    if not node_amis(settings):
        return ""
    linkedid = await _linkedid(call, settings, tickets)
    if linkedid not in settings.agents:
        return node_of_linkedid(settings, linkedid)
    try:  # the call offered to the seat (written by the follower of its node), else the seat's node
        desk = cast(str | None, await tickets.redis.hget(keyspace.desk(linkedid), "doc"))
        record = json.loads(desk) if desk else {}
        if record.get("state") in ("offered", "connected") and record.get("linkedid"):
            return node_of_linkedid(settings, str(record["linkedid"]))
        raw = cast(str | None, await tickets.redis.hget(keyspace.SEATS, linkedid))
        node = str(json.loads(raw).get("node") or "") if raw else ""
    except (RedisError, OSError, ValueError, AttributeError) as exc:
        raise TransferError(f"cannot read where seat {linkedid} talks: {exc}") from None
    if not node:
        raise TransferError(f"agent {linkedid} is not talking to a caller")
    return node_named(settings, node)


async def transfer_call(call: str, target: str, *, settings: Settings, ami: AmiClient | None = None,
                        tickets: "TicketStore | None" = None, three_party: bool = False, attended: bool = False,
                        calendar: "HolidayCalendar | None" = None) -> TransferResult:
    """Hand the call ``call`` (a linkedid, a ticket number, or the agent talking on it) to
    ``target`` (``12360``, ``customs``, ``110``, a platform's name).

    Talking to an agent: the agent's channel is blind-transferred (the agent is free at once);
    otherwise the caller's channel is redirected. ``three_party``: caller and agent stay and the
    target joins them (a ConfBridge). ``attended``: the agent consults the target first (AMI
    ``Atxfer``: the features' atxfer, as the softphone's ``*2``, the caller on music on hold) and
    completes by hanging up; a target that does not answer brings the agent back. Returns once Asterisk accepted the move; the outcome (did
    the target answer) arrives on the ticket. ``ami``: a connected client of the transfer user
    on the node that holds the call (:func:`call_node`; one is opened and closed here when
    None); ``tickets``: where ticket numbers are looked up
    (a read-only store is opened on ``settings.redis`` when None and one is needed);
    ``calendar``: the holidays for a sub-center's hours (the installed calendar when None).
    A sub-center outside its hours is refused, not dialed. Raises :class:`TransferError` with
    the reason when nothing was moved."""
    chosen = resolve(settings, target)
    if calendar is None and chosen.kind == "subcenter":  # only a sub-center has hours
        from ivr.core.calendar import load_calendar

        calendar = load_calendar()
    if calendar is not None:
        refuse_closed(chosen, settings, datetime.now().astimezone(), calendar)
    own_tickets = tickets is None
    if tickets is None:
        tickets = _ticket_reader(settings)
    try:
        node = "" if ami is not None else await call_node(call, settings, tickets)
        async with narrow_session(ami, lambda: transfer_client(settings, node), TransferError,
                                  "Asterisk refused the transfer") as client:
            linkedid = await _linkedid(call, settings, tickets)
            listing = await client.action({"Action": "Status"}, as_list=True)
            legs = [Leg.from_event(e) for e in listing if e.get("Event") == "Status"]
            linkedid, of_call = find_call(legs, linkedid, settings.agents)
            move = plan_move(linkedid, of_call, settings.agents, three_party=three_party, attended=attended)
            number = await _ticket_number(tickets, linkedid)
            caller = next(leg.channel for leg in of_call if leg.uniqueid == linkedid)
            # the ticket number travels in the SIP header of the transfer ([ivr-transfer-headers])
            await client.action({"Action": "Setvar", "Channel": caller, "Variable": "IVR_TRANSFER_TICKET", "Value": number})
            await client.action(_action(move.method, move.channel, move.extra, chosen.extension))
    finally:
        if own_tickets:
            await tickets.close()
    route = chosen.route
    return TransferResult(linkedid=linkedid, ticket=number, target=chosen.extension, kind=chosen.kind,
                          number=route.number, trunk=route.trunk, method=move.method, agent=move.agent)


def _action(method: str, channel: str, extra: str, extension: str) -> dict[str, str]:
    """The AMI action of a move (transfer.control.Move)."""
    if method == "blind":
        return {"Action": "BlindTransfer", "Channel": channel, "Context": TRANSFERS_CONTEXT, "Exten": extension}
    if method == "attended":  # Asterisk keys the atxfer feature code and the target on the agent's channel
        return {"Action": "Atxfer", "Channel": channel, "Context": TRANSFERS_CONTEXT, "Exten": extension}
    if method == "redirect":
        return {"Action": "Redirect", "Channel": channel, "Context": TRANSFERS_CONTEXT, "Exten": extension,
                "Priority": "1"}
    return {"Action": "Redirect", "Channel": channel, "Context": BRIDGE_CONTEXT, "Exten": "caller", "Priority": "1",
            "ExtraChannel": extra, "ExtraContext": BRIDGE_CONTEXT, "ExtraExten": extension, "ExtraPriority": "1"}


async def _linkedid(call: str, settings: Settings, tickets: "TicketStore") -> str:
    """A linkedid (``1733112345.42``) or an agent's name as given; a ticket number looked up."""
    call = call.strip()
    if call in settings.agents or "." in call:
        return call
    try:
        found = await tickets.by_number(call)
    except (RedisError, OSError) as exc:
        raise TransferError(f"cannot look ticket {call} up: {exc}") from None
    if found is None:
        raise TransferError(f"no ticket {call} (give a ticket number, a linkedid or an agent)")
    return found.linkedid


async def _ticket_number(tickets: "TicketStore", linkedid: str) -> str:
    """The call's ticket number for the header; none yet (or Redis away) does not stop a transfer."""
    try:
        ticket = await tickets.get(linkedid)
    except (RedisError, OSError):
        return ""
    return ticket.number if ticket else ""


def _ticket_reader(settings: Settings) -> "TicketStore":
    from ivr.config import state_dir
    from tickets.store import TicketStore

    # read only: a store writes nothing until a ticket is written, and this one never is
    return TicketStore(settings.redis, state_dir() / "spool", "transfer",
                       retention_days=settings.tickets.retention_days)


class HoursPublisher:
    """Publishes :func:`transfer.hours.closed_now` into Asterisk's globals (AMI ``Setvar``
    without a channel): at each login, when :meth:`republish` is called (after a config
    reload) and at each minute boundary, so the state flips when the hours begin or end.
    Without the engine the globals stay empty and the targets dial as before."""

    def __init__(self, settings: Callable[[], Settings], calendar: Callable[[], HolidayCalendar],
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc).astimezone()):
        self._settings, self._calendar, self._now = settings, calendar, now
        self._wake = asyncio.Event()

    def republish(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            client = transfer_client(self._settings())
        except TransferError as exc:
            log.warning("sub-center hours are not published to Asterisk (agents' transfers ignore them): %s", exc)
            return
        client.on_login(lambda _client: self.republish())
        try:
            await client.connect_retrying(2, log)
            while True:
                self._wake.clear()
                await self.publish(client)
                now = self._now()
                wait = 60.5 - now.second - now.microsecond / 1e6  # just past the next minute
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
        finally:
            client.close()


    async def publish(self, client: AmiClient) -> None:
        """One ``Setvar`` per sub-center with hours; an unreachable Asterisk waits for the next try."""
        if not client.connected:
            return
        s = self._settings()
        try:
            for name, closed in closed_now(s.subcenters, self._now(), self._calendar()).items():
                await client.action({"Action": "Setvar", "Variable": closed_variable(name), "Value": "1" if closed else "0"})
        except (AmiError, TimeoutError) as exc:
            log.warning("cannot publish sub-center hours: %s", exc)
