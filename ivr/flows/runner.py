"""Run one call through its flow over a :class:`~ivr.core.channel.Channel`, and hand back its route.

The runner owns the loop, not the behaviour: each node's ``run`` is one step (one AGI round
trip where the protocol allows). It ends with a :mod:`ivr.core.route` instead of holding the call
for a seat, and a :class:`CallRecord` of everything that happened for the ticket layer.

Failures are handled here and only here: a caller hanging up (``CallerHungUp``) ends the walk
with ``hung_up=True``; Asterisk refusing a command (``ChannelError``) or a runaway walk sends
the call to the 7×24 general queue, because 12345 never drops a caller on an engine fault; past
the deadline, on an engine bug or when the engine stops, the route is left to the dialplan's
own fallback (the general queue) and the record says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Callable, Mapping

from ivr.core.channel import CallerHungUp, CallInfo, Channel, ChannelError
from ivr.flows.base import CallContext, CallerTickets, TicketLookup
from ivr.flows.compiler import Flow
from ivr.flows.flowset import FlowSet
from ivr.flows.menu import Menu
from ivr.core.route import GENERAL_QUEUE, HangupRoute, QueueRoute, Route, TransferRoute
from ivr.flows.resume import VARIABLE as RESUME_VARIABLE, Resume, ResumePoint, Walked
from queues.policy import open_queue
from transfer.hours import open_subcenter

log = logging.getLogger(__name__)

MAX_STEPS = 500  # far above any valid flow; a guard against a bug, not a flow limit


@dataclass(frozen=True)
class Visit:
    flow: str
    node: str
    type: str
    at: float  # seconds since the call reached the engine
    seconds: float
    outcome: str
    session: int = 0  # which engine session walked it: 0 the first, 1 a stand-in (ivr/flows/resume.py)


@dataclass(frozen=True)
class CallRecord:
    """One call's path through the IVR, as the ticket layer will persist it."""

    unique_id: str
    dialed: str
    caller: str  # raw; mask before logging or pushing to departments
    flow: str  # the flow the call entered ("" when the number plan routed it directly)
    flow_version: str
    visits: tuple[Visit, ...]
    keys: tuple[str, ...]
    variables: Mapping[str, str]
    channel_variables: Mapping[str, str]  # set on the channel with the route (`set` + channel)
    route: Route  # HangupRoute when the caller hung up
    hung_up: bool
    # True when the engine leaves the route to the dialplan's own fallback (general queue):
    # deadline exceeded, an engine error, or the engine stopping mid-call.
    dialplan_fallback: bool
    error: str | None
    started: datetime
    ended: datetime
    session: int = 0  # 0: the call's first engine session; n: resumed n times (ivr/flows/resume.py)
    leader_session: str = ""  # the leader session (领导接听, config/sessions.yaml) a queue node marked it with


async def run_call(
    flows: FlowSet,
    call: CallInfo,
    channel: Channel,
    *,
    deadline: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc).astimezone(),
    clock: Callable[[], float] = time.monotonic,
    tickets: TicketLookup | None = None,
    caller_tickets: CallerTickets | None = None,
    entry: Flow | Route | None = None,
    resume: Resume | None = None,
) -> CallRecord:
    """Walk the flow for ``call.dialed`` on ``flows`` (take ``live.current`` once, pass it here).

    Always returns a record, whatever happens on the way: the one place where a hang-up, a
    channel error, the ``deadline`` (seconds), an engine bug or the engine stopping ends a call.
    ``now`` is the local wall clock (branch conditions, record timestamps); ``clock`` measures
    node timings. Both are injectable for tests and the simulator. ``tickets`` is what the
    progress query (``ticket_query``) looks numbers up in; without it that node tells the
    caller the query is unavailable and moves on. ``caller_tickets`` is the engine's look-up of the
    caller's recent tickets (a branch on ``open_ticket``, the query's ``own_first``). ``entry`` replaces the dialed line's
    (:meth:`FlowSet.entry`): the elderly flow. ``resume`` leaves a resume point on the channel
    as each menu starts and, for a stand-in session, starts at the point's menu.
    """
    started, t0 = now(), clock()
    entry = entry if entry is not None else flows.entry(call.dialed)
    visits: list[Visit] = []
    ctx = CallContext(call, channel, flows.settings, flows.catalog, flows.calendar, now, tickets=tickets,
                      caller_tickets=caller_tickets)
    route: Route
    hung_up, error, fallback = False, None, False
    first_flow = entry.name if isinstance(entry, Flow) else ""
    notice = flows.notice(call.dialed, started.date())
    point = resumable(flows, resume.point) if resume is not None and resume.point is not None else None
    if point is not None:  # a stand-in: the earlier path is this record's too
        entry, notice = flows.flows[point.flow], None
        first_flow = point.path[0].flow if point.path else point.flow
        t0 -= max(0.0, started.timestamp() - point.started)  # a visit's `at` counts from the call's start
        started = datetime.fromtimestamp(point.started, started.tzinfo)
        visits.extend(Visit(w.flow, w.node, _node_type(flows, w), 0.0, 0.0, "", w.session) for w in point.path)
        ctx.keys.extend(point.keys)
        ctx.variables.update({k: v for k, v in point.variables.items() if k.islower()})
        ctx.channel_variables.update({k: v for k, v in point.variables.items() if k.isupper()})
    walker = _Walker(flows, ctx, visits, clock, t0, resume, started.timestamp())
    start = point.node if point is not None else None
    try:
        async with asyncio.timeout(deadline):
            if notice is not None:  # a merged number: the transitional notice, then the 12345 flow
                began = clock()
                await ctx.play(notice)
                visits.append(Visit(first_flow, "merged_notice", "play", round(began - t0, 3), round(clock() - began, 3), notice))
            if not isinstance(entry, Flow):
                route = entry
            else:  # after the notice, the flow's after_notice node: the notice was the greeting
                start = start or (entry.after_notice if notice is not None else entry.start)
                route = await walker.walk(entry, start)
    except CallerHungUp:
        route, hung_up = HangupRoute(), True
    except ChannelError as exc:
        route, error = QueueRoute(GENERAL_QUEUE), f"channel error: {exc}"
    except _Runaway as exc:
        route, error = QueueRoute(GENERAL_QUEUE), str(exc)
    except TimeoutError:
        route, error, fallback = QueueRoute(GENERAL_QUEUE), f"engine deadline of {deadline:.0f} s exceeded", True
    except asyncio.CancelledError:
        # The engine is stopping: keep the record; the caller of run_call re-raises.
        route, error, fallback = QueueRoute(GENERAL_QUEUE), "engine stopped mid-call", True
    except Exception as exc:  # an engine bug must not cost the caller the call or the record
        log.exception("call %s: engine error", call.unique_id)
        route, error, fallback = QueueRoute(GENERAL_QUEUE), f"engine error: {exc!r}", True
    if isinstance(route, QueueRoute):
        route, moved = open_queue(route, flows.settings.queues, ctx.now(), flows.calendar)
        if moved:
            ctx.channel_variables["IVR_QUEUE_MOVED"] = moved
    elif isinstance(route, TransferRoute):
        route = open_subcenter(route, flows.settings.subcenters, ctx.now(), flows.calendar)
    return CallRecord(
        unique_id=call.unique_id,
        dialed=call.dialed,
        caller=call.caller,
        flow=first_flow,
        flow_version=flows.version,
        visits=tuple(visits),
        keys=tuple(ctx.keys),
        variables=MappingProxyType(dict(ctx.variables)),
        channel_variables=MappingProxyType(dict(ctx.channel_variables)),
        route=route,
        hung_up=hung_up,
        dialplan_fallback=fallback,
        error=error,
        started=started,
        ended=now(),
        session=resume.session if resume is not None else 0,
        leader_session=ctx.leader_session,
    )


class _Runaway(Exception):
    pass


@dataclass
class _Walker:
    """The node loop of one session: records visits and, entering a menu, the resume point."""

    flows: FlowSet
    ctx: CallContext
    visits: list[Visit]
    clock: Callable[[], float]
    t0: float
    resume: Resume | None
    started: float  # unix seconds the call reached its first engine

    async def walk(self, flow: Flow, start: str) -> Route:
        ctx, visits, clock, t0 = self.ctx, self.visits, self.clock, self.t0
        session = self.resume.session if self.resume is not None else 0
        node_id = start
        for _ in range(MAX_STEPS):
            node = flow.nodes[node_id]
            ctx.node_id = f"{flow.name}/{node_id}"
            if self.resume is not None and isinstance(node, Menu) and ctx.typeahead not in node.choices():
                await self._mark(flow.name, node_id)  # not when a key typed ahead answers it at once
            began, outcome = clock(), "interrupted"
            try:
                step = await node.run(ctx)
                outcome = step.outcome
            finally:
                # Recorded even when the caller hangs up mid-node: the record shows where.
                visits.append(Visit(flow.name, node_id, node.type, round(began - t0, 3), round(clock() - began, 3),
                                    outcome, session))
            if step.route is not None:
                return step.route
            if step.flow is not None:
                flow = self.flows.flows[step.flow]
                node_id = flow.start
            else:
                assert step.goto is not None
                node_id = step.goto
        raise _Runaway(f"flow {flow.name!r} took more than {MAX_STEPS} steps")

    async def _mark(self, flow: str, node: str) -> None:
        """Leave the resume point of this menu on the channel (one SET VARIABLE)."""
        assert self.resume is not None
        path = [Walked(v.flow, v.node, v.session) for v in self.visits]
        token = self.resume.here(flow, node, self.started, path, self.ctx.keys, self.ctx.variables,
                                 self.ctx.channel_variables)
        await self.ctx.channel.set_variable(RESUME_VARIABLE, token)


def resumable(flows: FlowSet, point: ResumePoint) -> ResumePoint | None:
    """``point``, when its menu is still a menu of the live flows (a reload may have removed it:
    then the stand-in starts the call afresh)."""
    flow = flows.flows.get(point.flow)
    node = flow.nodes.get(point.node) if flow is not None else None
    if not isinstance(node, Menu):
        log.warning("resume point %s/%s is not a menu of the live flows: the call starts afresh", point.flow, point.node)
        return None
    return point


def _node_type(flows: FlowSet, walked: Walked) -> str:
    flow = flows.flows.get(walked.flow)
    node = flow.nodes.get(walked.node) if flow is not None else None
    return node.type if node is not None else ""


async def apply_route(channel: Channel, route: Route, extra: Mapping[str, str] | None = None) -> None:
    """Set ``extra`` and the route's variables for the dialplan in one step, ``IVR_ROUTE`` last.

    The dialplan treats ``IVR_ROUTE`` as "the engine finished"; setting it last means a
    hang-up or failure halfway leaves the call on the dialplan's general-queue default.
    """
    variables = route.variables()
    route_name = variables.pop("IVR_ROUTE")
    await channel.set_variables({**(extra or {}), **variables, "IVR_ROUTE": route_name})
