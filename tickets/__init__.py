"""Ticket stubs (工单): what the phone platform hands to the rest of the 12345 workflow.

Exactly one ticket per call, keyed by Asterisk's ``linkedid``, whatever happened to the call:
answered, abandoned, transferred, failed. Read top-down:

- :mod:`tickets.model`: the ticket, its request types and dispositions;
- :mod:`tickets.scope`: the matters 12345 does not accept (不予受理) and what callers are told;
- :mod:`tickets.deadline`: handling deadlines in Chinese working days (or crisis hours);
- :mod:`tickets.push`: which department gets which event, signed how, retried when;
- :mod:`tickets.audit`: who read caller numbers unmasked, and why;
- :mod:`tickets.export`: the CSV columns.

Hotline logic only: nothing here imports a protocol library. The adapters live in ``ivr/``:
:mod:`ivr.store` (tickets in Redis, journaled on disk first, numbered on write),
:mod:`ivr.push` (webhook delivery), :mod:`ivr.follow` (the call tracker fed over AMI).
"""
