"""panoramisk's own log lines carry no caller number, no secret, no forged line.

panoramisk logs every AMI message it parses at DEBUG (``message interpreted: {…CallerIDNum:
13900000001…}``) and the actions it queues at INFO, the Login's ``Secret`` among them; an
engine run with ``--log-level debug`` would write every caller's number in clear. So below
WARNING nothing of panoramisk is logged at all (what matters is logged by the engine's own
modules, masked), and what remains has every run of five or more digits masked
(:func:`ivr.core.masking.mask_number`), secrets blanked and control characters escaped.
"""

from __future__ import annotations

import logging
import re

from ivr.core.logtext import one_line
from ivr.core.masking import mask_number

LOGGERS = ("panoramisk", "panoramisk.ami_protocol", "panoramisk.manager", "panoramisk.fast_agi",
           "panoramisk.call_manager")
DIGITS = re.compile(r"(?<![0-9])[0-9]{5,}(?![0-9])")
SECRET = re.compile(r"(?i)(secret|password)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}\\]+")
MAX_LINE = 1000


def scrub(text: str) -> str:
    """``text`` with numbers masked, secrets blanked, on one line."""
    text = SECRET.sub(r"\1\2***", text)
    return one_line(DIGITS.sub(lambda m: mask_number(m.group()), text), MAX_LINE)


class PanoramiskFilter(logging.Filter):
    """Drops panoramisk's records below WARNING; scrubs the others."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.msg, record.args = scrub(record.getMessage()), None
        return True


def install() -> None:
    """Put the filter on each of panoramisk's loggers (once)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, PanoramiskFilter) for f in logger.filters):
            logger.addFilter(PanoramiskFilter())
