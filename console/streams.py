"""The live pages' open event streams, per user: at most ``web.streams_per_user`` at once, and
all of a user's streams end when that user signs out, is changed or removed (a notice on
:data:`ivr.store.keyspace.CONSOLE_USERS_CHANGED`, from any console process or ``ivr users``).

A stream that ends is reopened by the browser on its own; that request passes the session
check again, so a signed-out or changed user's stream stays closed, and a still valid one
(another tab of a user who signed out elsewhere) carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from aiohttp import web


class OpenStreams:
    def __init__(self, per_user: int):
        self.per_user = per_user
        self._open: dict[str, set[asyncio.Event]] = {}
        self._closed = False

    @contextlib.asynccontextmanager
    async def opened(self, user: str) -> AsyncIterator[asyncio.Event]:
        """An event set when this stream must end; 429 (before any byte is sent) over the limit."""
        streams = self._open.setdefault(user, set())
        if len(streams) >= self.per_user:
            raise web.HTTPTooManyRequests(text=f"同一用户最多同时打开 {self.per_user} 个实时页面，请关闭其他窗口后重试。")
        ended = asyncio.Event()
        if self._closed:
            ended.set()
        streams.add(ended)
        try:
            yield ended
        finally:
            streams.discard(ended)
            if not streams:
                self._open.pop(user, None)

    def end(self, user: str) -> None:
        """End every open stream of ``user`` (signed out, changed or removed)."""
        for ended in self._open.get(user, ()):
            ended.set()

    def end_all(self) -> None:
        """The console stops: every stream ends, none opens."""
        self._closed = True
        for user in list(self._open):
            self.end(user)

    def count(self, user: str) -> int:
        return len(self._open.get(user, ()))
