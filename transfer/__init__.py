"""Calls that leave 12345: sub-center hotlines (设分中心) and emergency linkage.

- :mod:`transfer.model`: sub-centers as configured, the emergency numbers, and the route that
  dials a sub-center with a fallback queue.

Hotline logic only; the dialplan that dials and reports the result is asterisk-conf/extensions.conf
([ivr-route] transfer). The number plan and agent transfers come with the number-plan issue.
"""
