"""Call flows: admin-written YAML compiled into typed nodes, checked, linted and run.

What the AGI side needs::

    live = LiveFlows.from_config("config", catalog_loader("prompts"))   # raises if invalid
    record = await run_call(live.current, call_info, channel, tickets=lookup)  # one FlowSet per call
    if not record.hung_up:
        await apply_route(channel, record.route, record.channel_variables)  # one round trip
    live.reload()  # on SIGHUP / `ivr reload`: ReloadResult(ok, version, errors)

``lookup`` is a :class:`TicketLookup` (the ticket store) for the progress query; without it
the ``ticket_query`` node tells the caller the query is unavailable.
"""

from ivr.flows.base import TicketLookup
from ivr.flows.calendar import HolidayCalendar, load_calendar
from ivr.flows.compiler import Flow, compile_flow, flow_json_schema
from ivr.flows.lint import FlowLint
from ivr.flows.live import FlowSet, LiveFlows, ReloadResult, catalog_loader, compile_config, default_prompts_dir
from ivr.flows.runner import CallRecord, Visit, apply_route, run_call
from ivr.flows.simulator import ScriptedChannel, simulate

__all__ = [
    "CallRecord",
    "Flow",
    "FlowLint",
    "FlowSet",
    "HolidayCalendar",
    "LiveFlows",
    "ReloadResult",
    "ScriptedChannel",
    "TicketLookup",
    "Visit",
    "apply_route",
    "catalog_loader",
    "compile_config",
    "compile_flow",
    "default_prompts_dir",
    "flow_json_schema",
    "load_calendar",
    "run_call",
    "simulate",
]
