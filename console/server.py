"""Serving the console beside the engine: ``ivr serve`` starts it on ``web.host:web.port``."""

from __future__ import annotations

import errno

from aiohttp import web

from console.app import create_app
from console.context import Console
from ivr.config import ConfigError


async def start(console: Console, *, origin: str = "web.port") -> web.AppRunner:
    """Listening when this returns; ConfigError (one line) when the port cannot be had."""
    runner = web.AppRunner(create_app(console), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, console.web.host, console.web.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        what = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
        raise ConfigError(f"console port {console.web.host}:{console.web.port} {what} (web.port from {origin})") from None
    return runner
