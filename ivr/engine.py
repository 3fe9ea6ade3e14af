"""One call through the engine: walk the live flow, hand the route to the dialplan, keep
the call record. Protocol-free: it sees a :class:`ivr.core.channel.Channel` and a store.

What the engine knows of the caller decides how they wait (:mod:`queues.priority`): a
registered elderly caller runs the elderly flow instead of the line's menus, a repeat caller
with an open ticket and a caller who pressed the one-key-to-human key wait raised. Both
look-ups are bounded: a slow Redis costs a caller at most a fraction of a second, never the call.

A hang-up anywhere still yields a record; a failure to store it is the store's problem
(it spools), never the caller's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from ivr.agi.call_guard import bounded, sign_resume, verified_resume
from ivr.core.callerid import is_callable
from ivr.core.channel import CallerHungUp, CallInfo, Channel, ChannelError
from ivr.flows.compiler import Flow
from ivr.flows.flowset import FlowSet
from ivr.hot_reload import LiveFlows
from ivr.flows.base import CallerTickets, TicketLookup
from ivr.flows.resume import BadResumePoint, Resume, decode
from ivr.flows.runner import CallRecord, apply_route, run_call
from ivr.core.masking import mask_number
from ivr.core.route import GENERAL_QUEUE, QueueRoute
from queues.elderly import caller_number
from queues.priority import Decision, Reason, decide

log = logging.getLogger(__name__)


class RecordStore(Protocol):
    async def save_call(self, record: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class EarlierTicket:
    """One of the caller's recent tickets; ``open``: not yet marked 办结 (docs/tickets.md);
    ``case``: a matter the caller can follow — a seat answered the call, or the workflow moved
    it on. Only cases are offered to the progress query: the stub of a call hung up in the
    menus (a query call's own, say) is no 工单正在办理."""

    number: str
    open: bool
    case: bool = False


RepeatLookup = Callable[[str, str], Awaitable[list[EarlierTicket]]]
"""(caller number, this call's unique id) → the caller's earlier recent tickets, oldest first."""
ElderlyLookup = Callable[[str], Awaitable[bool]]
ChannelSeen = Callable[[str, str], bool]
"""(uniqueid, channel name) → has the AMI follower seen that channel live (ivr/agi/call_guard.py)?"""
"""(caller number, normalised) → is it on the registered elderly list?"""
REPEAT_TIMEOUT = 0.3  # s the route waits for the repeat-caller lookup; past it the call goes on unflagged
ELDERLY_TIMEOUT = 0.3  # s the call's start waits for the elderly lookup; past it the caller hears the menu


def record_to_json(record: CallRecord) -> dict[str, Any]:
    """The record as JSON-ready data (built field by field: ``asdict`` deep-copies, slowly)."""
    route = record.route
    return {
        "unique_id": record.unique_id,
        "dialed": record.dialed,
        "caller": record.caller,
        "flow": record.flow,
        "flow_version": record.flow_version,
        "visits": [
            {"flow": v.flow, "node": v.node, "type": v.type, "at": v.at, "seconds": v.seconds, "outcome": v.outcome,
             "session": v.session}
            for v in record.visits
        ],
        "resumed": record.session,
        "leader_session": record.leader_session,
        "keys": list(record.keys),
        "variables": dict(record.variables),
        "channel_variables": dict(record.channel_variables),
        "route": {"type": route_name(record), **{f.name: getattr(route, f.name) for f in dataclasses.fields(route)}},
        "hung_up": record.hung_up,
        "dialplan_fallback": record.dialplan_fallback,
        "error": record.error,
        "started": record.started.isoformat(),
        "ended": record.ended.isoformat(),
    }


ROUTE_TIMEOUT = 5.0  # seconds for Asterisk to accept the route; past it the dialplan falls back


class Engine:
    """``on_record`` hears every call record (the call tracker); ``repeat_of`` looks up the
    caller's recent tickets while the flow runs, so the route can flag a repeat caller;
    ``is_elderly`` asks the elderly list before the flow starts; ``channel_seen`` confirms the
    call's identity from AMI, so that its record may replace one a made-up environment wrote.
    With ``resume_key`` (the engines' shared key: :func:`ivr.agi.call_guard.resume_key`) every
    menu leaves a signed resume point on the channel, and a call handed over by the dialplan
    after its engine vanished resumes at that menu (:mod:`ivr.flows.resume`)."""

    def __init__(self, flows: LiveFlows, store: RecordStore, call_timeout: float = 90.0, *,
                 on_record: Callable[[dict[str, Any]], None] | None = None, repeat_of: RepeatLookup | None = None,
                 tickets: TicketLookup | None = None, is_elderly: ElderlyLookup | None = None,
                 channel_seen: ChannelSeen | None = None, resume_key: bytes | None = None):
        self.flows = flows
        self.store = store
        self.call_timeout = call_timeout
        self.on_record = on_record
        self.repeat_of = repeat_of
        self.tickets = tickets
        self.is_elderly = is_elderly
        self.channel_seen = channel_seen
        self.resume_key = resume_key

    async def handle_call(self, call: CallInfo, channel: Channel) -> None:
        flows = self.flows.current  # taken once: a reload mid-call does not touch this call
        try:
            resume = self._resume(call)
        except BadResumePoint as exc:  # not an engine's point: no flow, no record; the dialplan goes on
            log.warning("call %s refused: its resume point %s", call.unique_id, exc)
            await channel.release()
            return
        repeat = asyncio.ensure_future(self.repeat_of(call.caller, call.unique_id)) if self.repeat_of and call.caller else None
        try:
            elderly = await self._elderly_entry(flows, call)  # a stand-in still raises their priority
            record = await run_call(flows, call, channel, deadline=self.call_timeout, tickets=self.tickets,
                                    caller_tickets=_caller_tickets(repeat), entry=elderly, resume=resume)
            earlier: list[EarlierTicket] = await _bounded(repeat, REPEAT_TIMEOUT, [])
        finally:
            if repeat is not None and not repeat.done():
                repeat.cancel()
        route_variables = dict(record.channel_variables)
        if is_callable(flows.settings.callers, call.caller):  # the dialplan offers a callback only then
            route_variables["IVR_CALLABLE"] = "1"
        if earlier:
            route_variables.update(IVR_REPEAT_CALLER="1", IVR_REPEAT_OF=",".join(t.number for t in earlier[-5:]))
        decision = None
        if isinstance(record.route, QueueRoute):
            reasons = {Reason.ELDERLY} if elderly else set()
            reasons |= {Reason.REPEAT} if any(t.open for t in earlier) else set()
            reasons |= {Reason.ONE_KEY} if record.route.one_key else set()
            decision = decide(flows.settings.priority, record.route.priority, reasons)
            record = dataclasses.replace(record, route=dataclasses.replace(record.route, priority=decision.priority))
            route_variables.update(decision.variables())
        if not record.hung_up and not record.dialplan_fallback:
            try:
                async with asyncio.timeout(ROUTE_TIMEOUT):
                    await apply_route(channel, record.route, route_variables)
            except CallerHungUp:
                record = dataclasses.replace(record, hung_up=True)
            except (ChannelError, TimeoutError) as exc:  # IVR_ROUTE unset: the dialplan's fallback
                record = dataclasses.replace(record, dialplan_fallback=True, error=f"route not set: {exc!r}")
            except asyncio.CancelledError:  # the engine is stopping: keep the record, re-raised below
                record = dataclasses.replace(record, dialplan_fallback=True, error="engine stopped while setting the route")
        try:
            await channel.release()  # the caller goes on at once; the record is written after
        except Exception:  # noqa: BLE001 - the socket may already be gone
            pass
        log.info(
            "call %s from %s to %s: flow %s keys %s -> %s%s%s",
            call.unique_id, mask_number(call.caller), call.dialed, record.flow or "-",
            keys_for_log(record.keys), route_name(record),
            " (caller hung up)" if record.hung_up else "", f" [{record.error}]" if record.error else "",
        )
        data = record_to_json(record)
        data["repeat_of"] = [t.number for t in earlier]
        data["elderly"] = elderly is not None
        data["priority"] = _priority_json(decision)
        data["channel"] = call.channel
        data["confirmed"] = bool(self.channel_seen and self.channel_seen(call.unique_id, call.channel))
        data = bounded(data)
        await self.store.save_call(data)
        if self.on_record is not None:
            self.on_record(data)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # the engine is stopping; the record is safe


    def _resume(self, call: CallInfo) -> Resume | None:
        """This session's resume bookkeeping: None without a key; the point the dialplan passed
        (third AGI argument) when an engine before this one vanished mid-IVR."""
        key = self.resume_key
        token = call.arguments[2] if len(call.arguments) > 2 else ""
        if key is None:
            if token:
                raise BadResumePoint("cannot be checked: this engine has no resume key")
            return None

        def sign(body: str) -> str:
            return sign_resume(key, call.unique_id, call.channel, body)

        if not token:
            return Resume(sign)
        body = verified_resume(key, call.unique_id, call.channel, token)
        if body is None:
            raise BadResumePoint("is not signed by an engine for this call")
        return Resume(sign, decode(body))

    async def _elderly_entry(self, flows: FlowSet, call: CallInfo) -> Flow | QueueRoute | None:
        """What a registered elderly caller runs instead of the dialed line's flow: the elderly
        flow, or without one the general queue. None for everyone else, and on a line that runs
        no flow (a sub-center line transfers straight away: nothing to skip)."""
        number = caller_number(call.caller)
        if self.is_elderly is None or number is None or not isinstance(flows.entry(call.dialed), Flow):
            return None
        lookup = asyncio.ensure_future(self.is_elderly(number))
        try:
            found = await _bounded(lookup, ELDERLY_TIMEOUT, False)
        finally:
            lookup.cancel()
        if not found:
            return None
        return flows.flows.get(flows.settings.priority.elderly.flow) or QueueRoute(GENERAL_QUEUE)


T = TypeVar("T")


def _caller_tickets(repeat: "asyncio.Future[list[EarlierTicket]] | None") -> CallerTickets | None:
    """The flow's view of the repeat-caller look-up already running (12345 offers a caller with
    an open case the progress query): its cases only; shielded, so a flow that stops waiting
    does not cancel it."""
    if repeat is None:
        return None
    running = repeat

    async def recent() -> list[tuple[str, bool]]:
        return [(t.number, t.open) for t in await asyncio.shield(running) if t.case]

    return recent


async def _bounded(lookup: "asyncio.Future[T] | None", timeout: float, default: T) -> T:
    """A caller look-up's answer, if it comes in time; a slow or dead Redis must not hold the
    call (the caller is then simply not flagged)."""
    if lookup is None:
        return default
    try:
        async with asyncio.timeout(timeout):
            return await lookup
    except Exception:  # noqa: BLE001 - timeout, Redis down: not flagged
        return default


def _priority_json(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {"priority": decision.priority, "reason": decision.reason.value if decision.reason else "",
            "reasons": [r.value for r in decision.reasons]}


def keys_for_log(keys: tuple[str, ...]) -> str:
    """Menu keys as pressed; anything longer (an ID number, a phone number) only by length."""
    return " ".join(k if len(k) == 1 else f"<{len(k)} digits>" for k in keys) or "-"


def route_name(record: CallRecord) -> str:
    return "fallback" if record.dialplan_fallback else record.route.variables()["IVR_ROUTE"]
