"""Render the Asterisk configuration: static files from ``asterisk-conf/`` plus the files that
depend on ``config/`` (agents, queues, trunks, ports, secrets), generated here so there is one
source of truth. Used by ``ivr asterisk-conf render`` and by the test bed.

Protocol code: it knows Asterisk's file formats, not hotline rules. One module per file family
(:mod:`.manager`, :mod:`.pjsip`, :mod:`.queues`, …); :mod:`.files` puts them together (not
called ``render``: a submodule of that name would clash with the function). This package
re-exports what callers import.
"""

from __future__ import annotations

from ivr.asterisk_conf.globals import fastagi_url, process_agi_script
from ivr.asterisk_conf.manager import (ADMIN_WRITE, ENGINE_EVENTS, ENGINE_READ, ENGINE_WRITE, SEATS_WRITE,
                                       TRANSFER_WRITE)
from ivr.asterisk_conf.options import EXTRA_FILES, QUIET_EVENTS, TRACED_EVENTS, Directories, RenderOptions
from ivr.asterisk_conf.out_of_scope import AGENT_CONNECTED
from ivr.asterisk_conf.pjsip import MEDIA, WILDCARDS, endpoint, media
from ivr.asterisk_conf.queues import QUEUE_SOUNDS, asterisk_queue, config_queue
from ivr.asterisk_conf.reload import RELOAD_MODULES, reload_modules
from ivr.asterisk_conf.files import SECRET_FILES, STATIC_DIR, STATIC_FILES, copy_static, render, write

__all__ = [
    "ADMIN_WRITE", "AGENT_CONNECTED", "ENGINE_EVENTS", "ENGINE_READ", "ENGINE_WRITE", "EXTRA_FILES", "MEDIA",
    "QUEUE_SOUNDS", "QUIET_EVENTS", "RELOAD_MODULES", "SECRET_FILES", "SEATS_WRITE", "STATIC_DIR", "STATIC_FILES",
    "TRACED_EVENTS", "TRANSFER_WRITE", "WILDCARDS", "Directories", "RenderOptions", "asterisk_queue", "config_queue", "copy_static",
    "endpoint", "fastagi_url", "media", "process_agi_script", "reload_modules", "render", "write",
]
