"""extensions_globals.conf: where the dialplan reaches the engine (FastAGI or process AGI) and the
values it reads from config/."""

from __future__ import annotations

import os
import sys

from ivr.asterisk_conf.options import RenderOptions
from ivr.asterisk_conf.recording import recording_globals
from ivr.config import Settings
from ivr.core.conftext import arg, value, word


def fastagi_url(s: Settings) -> str:
    return f"agi://{s.agi.host}:{s.agi.port}/ivr"


def engine_urls(s: Settings, o: RenderOptions) -> list[str]:
    """What the dialplan tries for a call, in turn (docs/cluster.md): every engine of
    ``agi.engines`` (default: this one), or the one URL the options or process AGI name."""
    if o.agi_url:
        return [o.agi_url]
    if s.agi.entry == "process":
        return [process_agi_script()]
    return [f"agi://{engine}/ivr" for engine in s.agi.engines] or [fastagi_url(s)]


def process_agi_script() -> str:
    """The ``ivr-agi`` console script of this installation."""
    return os.path.join(sys.prefix, "bin", "ivr-agi")


def globals_conf(s: Settings, o: RenderOptions) -> str:
    """IVR_AGI_URL is the first engine, IVR_AGI_URL_<i> the others ([ivr-answer] tries
    IVR_ENGINES of them, starting at the one whose turn it is: each IVR_ENGINE_TURN_S seconds in
    turn, or with 0 the next one per call, which IVR_ENGINE_TURN counts)."""
    first, *others = engine_urls(s, o)
    timeout = o.engine_timeout or int(s.agi.call_timeout) + 30
    return (
        f"IVR_AGI_URL={value(first)}\n"
        + "".join(f"IVR_AGI_URL_{i}={value(url)}\n" for i, url in enumerate(others, start=1))
        + f"IVR_ENGINES={len(others) + 1}\nIVR_ENGINE_TURN=0\nIVR_ENGINE_TURN_S={s.agi.engine_turn_s}\n"
        f"IVR_ENV_FILE={arg(s.agi.env_file)}\nIVR_ENGINE_TIMEOUT={timeout}\n"
        f"IVR_SURVEY={int(s.tickets.satisfaction)}\nIVR_SURVEY_TIMEOUT={s.tickets.satisfaction_timeout}\n"
        + "".join(f"IVR_PAUSE_REASON_{word(digit)}={arg(reason)}\n" for digit, reason in s.pause_reasons.items())
        + recording_globals(s)
    )
