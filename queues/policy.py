"""Which queue a call may wait in right now: an expert queue outside its staffed hours hands
the call on to its overflow queue at once, before the caller waits for nobody.

Whether any expert is logged in is not decided here: Asterisk knows that at the moment the
call joins (the expert queues' ``joinempty``), also when the engine is down.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Mapping

from ivr.core.calendar import HolidayCalendar
from ivr.core.hours import staffed
from queues.model import Queue, QueueRoute

__all__ = ["open_queue", "staffed"]


def open_queue(route: QueueRoute, queues: Mapping[str, Queue], now: datetime, calendar: HolidayCalendar) -> tuple[QueueRoute, str]:
    """The route to a queue that is staffed now, following overflows; and, when it moved, why
    (``expert-hrss closed``) for the call record and the ticket."""
    name, seen = route.queue, [route.queue]
    while name in queues and not staffed(queues[name].hours, now, calendar):
        nxt = queues[name].overflow_queue(name)
        if nxt is None or nxt in seen:
            break
        name = nxt
        seen.append(name)
    if name == route.queue:
        return route, ""
    return dataclasses.replace(route, queue=name), f"{route.queue} closed"
