"""Ticket stubs (工单): what the phone platform hands to the rest of the 12345 workflow.

Exactly one ticket per call, keyed by Asterisk's ``linkedid``, whatever happened to the call:
answered, abandoned, transferred, failed. Read top-down:

- :mod:`tickets.model`: the ticket, its request types and dispositions;
- :mod:`tickets.deadline`: handling deadlines in Chinese working days (or crisis hours);
- :mod:`tickets.repository`: tickets in Redis, journaled on disk first, numbered on write;
- :mod:`tickets.push`: ticket events delivered to department webhooks;
- :mod:`tickets.audit`: who read caller numbers unmasked.

Hotline logic only: nothing here imports a protocol library.
"""
