"""One call through the engine: walk the live flow, hand the route to the dialplan, keep
the call record. Protocol-free: it sees a :class:`ivr.channel.Channel` and a store.

A hang-up anywhere still yields a record; a failure to store it is the store's problem
(it spools), never the caller's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Protocol

from ivr.channel import CallerHungUp, CallInfo, Channel, ChannelError
from ivr.flows.live import LiveFlows
from ivr.flows.runner import CallRecord, apply_route, run_call
from ivr.masking import mask_number

log = logging.getLogger(__name__)


class RecordStore(Protocol):
    async def save_call(self, record: dict[str, Any]) -> None: ...


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
            {"flow": v.flow, "node": v.node, "type": v.type, "at": v.at, "seconds": v.seconds, "outcome": v.outcome}
            for v in record.visits
        ],
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
    def __init__(self, flows: LiveFlows, store: RecordStore, call_timeout: float = 90.0):
        self.flows = flows
        self.store = store
        self.call_timeout = call_timeout

    async def handle_call(self, call: CallInfo, channel: Channel) -> None:
        flows = self.flows.current  # taken once: a reload mid-call does not touch this call
        record = await run_call(flows, call, channel, deadline=self.call_timeout)
        if not record.hung_up and not record.dialplan_fallback:
            try:
                async with asyncio.timeout(ROUTE_TIMEOUT):
                    await apply_route(channel, record.route, record.channel_variables)
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
        await self.store.save_call(record_to_json(record))
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # the engine is stopping; the record is safe


def keys_for_log(keys: tuple[str, ...]) -> str:
    """Menu keys as pressed; anything longer (an ID number, a phone number) only by length."""
    return " ".join(k if len(k) == 1 else f"<{len(k)} digits>" for k in keys) or "-"


def route_name(record: CallRecord) -> str:
    return "fallback" if record.dialplan_fallback else record.route.variables()["IVR_ROUTE"]
