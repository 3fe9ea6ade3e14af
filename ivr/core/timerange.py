"""``HH:MM-HH:MM`` time ranges: one parser for flow branches, queue hours and sub-center hours.

In the core so that queues and transfer (domain) need not import the flows package to read hours.
"""

from __future__ import annotations

import re
from datetime import time


def parse_time_range(text: str) -> tuple[time, time]:
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-4]):([0-5]\d)", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a time range like 08:30-17:30")
    start = time(int(m[1]), int(m[2]))
    end = time.max if m[3] == "24" else time(int(m[3]), int(m[4]))
    return start, end


def in_time_range(now: time, start: time, end: time) -> bool:
    return start <= now < end if start <= end else now >= start or now < end
