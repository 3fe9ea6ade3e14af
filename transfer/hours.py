"""A sub-center's hours (设分中心的服务时间): outside them 12345 does not dial it.

The caller is told so truthfully (``subcenter_closed``) and offered the 12345 queue or a
callback, as after a failed transfer; the ticket records ``CLOSED`` as the attempt's result.
The same :class:`ivr.core.hours.Hours` and holiday calendar as the expert queues' hours.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Mapping

from ivr.core.calendar import HolidayCalendar
from ivr.core.hours import staffed
from transfer.model import SubCenter, TransferRoute


def open_subcenter(route: TransferRoute, subcenters: Mapping[str, SubCenter], now: datetime,
                   calendar: HolidayCalendar) -> TransferRoute:
    """``route`` as it may be carried out ``now``: marked closed outside its sub-center's hours."""
    sc = subcenters.get(route.trunk)
    if sc is None or staffed(sc.hours, now, calendar):
        return route
    return dataclasses.replace(route, closed=True)


def closed_now(subcenters: Mapping[str, SubCenter], now: datetime, calendar: HolidayCalendar) -> dict[str, bool]:
    """Each sub-center that has hours: is it closed ``now``? What the engine publishes into
    Asterisk for the agents' own transfers (the dialplan cannot tell working days)."""
    return {name: not staffed(sc.hours, now, calendar) for name, sc in subcenters.items() if sc.hours is not None}
