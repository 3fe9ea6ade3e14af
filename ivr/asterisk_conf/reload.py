"""Making a running Asterisk read the rendered files, calls staying up."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.ami.client import AmiClient

# What a change in config/ touches: endpoints (agents, trunks), queues, the dialplan, and the HTTP
# server (on once a seat has a web phone, http.conf). Reloading them keeps calls up and logged-in
# agents logged in (dynamic members).
RELOAD_MODULES = ("http", "res_pjsip.so", "app_queue.so", "pbx_config.so")


async def reload_modules(ami: "AmiClient") -> None:
    """Make a running Asterisk read the files :func:`write` rendered (calls stay up)."""
    for module in RELOAD_MODULES:
        await ami.action({"Action": "Reload", "Module": module})
