"""One call through the engine: walk the live flow, hand the route to the dialplan, keep
the call record. Protocol-free: it sees a :class:`ivr.channel.Channel` and a store.

A hang-up anywhere still yields a record; a failure to store it is the store's problem
(it spools), never the caller's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timezone
from typing import Any, Protocol

from ivr.channel import CallerHungUp, CallInfo, Channel
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
        "route": {"type": route.variables()["IVR_ROUTE"], **{f.name: getattr(route, f.name) for f in dataclasses.fields(route)}},
        "hung_up": record.hung_up,
        "error": record.error,
        "started": record.started.isoformat(),
        "ended": record.ended.isoformat(),
    }


def timed_out_record(call: CallInfo, version: str, seconds: float) -> dict[str, Any]:
    """What is known of a call the engine abandoned at its deadline."""
    now = datetime.now(timezone.utc).astimezone().isoformat()
    return {
        "unique_id": call.unique_id, "dialed": call.dialed, "caller": call.caller, "flow": "",
        "flow_version": version, "visits": [], "keys": [], "variables": {}, "channel_variables": {},
        "route": {"type": "fallback"}, "hung_up": False,
        "error": f"engine deadline of {seconds:.0f} s exceeded", "started": now, "ended": now,
    }


class Engine:
    def __init__(self, flows: LiveFlows, store: RecordStore, call_timeout: float = 90.0):
        self.flows = flows
        self.store = store
        self.call_timeout = call_timeout

    async def handle_call(self, call: CallInfo, channel: Channel) -> None:
        flows = self.flows.current  # taken once: a reload mid-call does not touch this call
        try:
            async with asyncio.timeout(self.call_timeout):
                record = await run_call(flows, call, channel)
        except TimeoutError:
            # Leave IVR_ROUTE unset: the dialplan sends the call to the general queue.
            log.error("call %s: engine gave up after %.0f s; dialplan takes over", call.unique_id, self.call_timeout)
            await self.store.save_call(timed_out_record(call, flows.version, self.call_timeout))
            return
        if not record.hung_up:
            try:
                await apply_route(channel, record.route, record.channel_variables)
            except CallerHungUp:
                record = dataclasses.replace(record, hung_up=True)
        log.info(
            "call %s from %s to %s: flow %s keys %s -> %s%s",
            call.unique_id, mask_number(call.caller), call.dialed, record.flow or "-",
            "".join(record.keys) or "-", record.route.variables()["IVR_ROUTE"],
            " (caller hung up)" if record.hung_up else "",
        )
        await self.store.save_call(record_to_json(record))
