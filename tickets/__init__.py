"""Ticket stubs (工单): what the phone platform hands to the rest of the 12345 workflow.

Exactly one ticket per call, keyed by Asterisk's ``linkedid``, whatever happened to the call:
answered, abandoned, transferred, failed. Read top-down:

- :mod:`tickets.model`: the ticket, its request types and dispositions;
- :mod:`tickets.scope`: the matters 12345 does not accept (不予受理) and what callers are told;
- :mod:`tickets.deadline`: handling deadlines in Chinese working days (or crisis hours);
- :mod:`tickets.push`: which department gets which event, signed how, retried when;
- :mod:`tickets.workflow`: what a department may write back (已派单, 办理中, 已办结, 退回, 延期), overdue;
- :mod:`tickets.audit`: who read caller numbers unmasked, and why;
- :mod:`tickets.export`: the CSV columns;
- :mod:`tickets.filters`, :mod:`tickets.timeline`, :mod:`tickets.settings`: list filters, a
  call's steps, the tickets' settings.

Those are hotline logic only: none imports a protocol library. The feature's adapters sit beside
them, one layer up (docs/architecture.md): :mod:`tickets.store` (tickets in Redis, journaled on
disk first, numbered on write), :mod:`tickets.reads` (paged and streamed reads),
:mod:`tickets.webhooks` (webhook delivery), :mod:`tickets.writeback` (a department's event onto its
ticket, once); on top, :mod:`tickets.cli` (``ivr tickets``, its text
in :mod:`tickets.cli_text`) and :mod:`tickets.views` (the console's ticket pages), :mod:`tickets.dept_api` (the departments'
signed write-back API). The call
tracker fed over AMI is :mod:`ivr.follow`.
"""
