"""extensions_globals.conf: where the dialplan reaches the engine (FastAGI or process AGI) and the
values it reads from config/."""

from __future__ import annotations

import os
import sys

from ivr.asterisk_conf.options import RenderOptions
from ivr.config import Settings
from ivr.core.conftext import arg, value, word


def fastagi_url(s: Settings) -> str:
    return f"agi://{s.agi.host}:{s.agi.port}/ivr"


def process_agi_script() -> str:
    """The ``ivr-agi`` console script of this installation."""
    return os.path.join(sys.prefix, "bin", "ivr-agi")


def globals_conf(s: Settings, o: RenderOptions) -> str:
    url = o.agi_url or (fastagi_url(s) if s.agi.entry == "fastagi" else process_agi_script())
    timeout = o.engine_timeout or int(s.agi.call_timeout) + 30
    return (
        f"IVR_AGI_URL={value(url)}\nIVR_ENV_FILE={arg(s.agi.env_file)}\nIVR_ENGINE_TIMEOUT={timeout}\n"
        f"IVR_SURVEY={int(s.tickets.satisfaction)}\nIVR_SURVEY_TIMEOUT={s.tickets.satisfaction_timeout}\n"
        + "".join(f"IVR_PAUSE_REASON_{word(digit)}={arg(reason)}\n" for digit, reason in s.pause_reasons.items())
    )
