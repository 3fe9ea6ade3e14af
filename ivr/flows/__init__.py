"""Call flows: admin-written YAML compiled into typed nodes, checked, linted and run.

What the AGI side needs::

    live = LiveFlows.from_config("config", catalog_loader("prompts"))   # raises if invalid
    record = await run_call(live.current, call_info, channel, tickets=lookup)  # one FlowSet per call
    if not record.hung_up:
        await apply_route(channel, record.route, record.channel_variables)  # one round trip
    live.reload()  # on SIGHUP / `ivr reload`: ReloadResult(ok, version, errors)

``lookup`` is a :class:`TicketLookup` (the ticket store) for the progress query; without it
the ``ticket_query`` node tells the caller the query is unavailable.

The package imports none of its modules (import what you use from the module that defines it:
``LiveFlows``/``catalog_loader`` from :mod:`ivr.hot_reload`, ``run_call``/``apply_route`` from
:mod:`ivr.flows.runner`, ``TicketLookup`` from :mod:`ivr.flows.base`), so importing one flows
module never drags in the runner and, through it, queues and transfer (issue 18).
"""
