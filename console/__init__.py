"""The hotline's web console: sign-in and roles, tickets, flows and the number plan, metrics.

Served by ``ivr serve`` (:mod:`console.server`) on the ``web:`` port; Mandarin first,
server-rendered HTML. Read :mod:`console.app` first: it shows how the pieces fit.
"""
