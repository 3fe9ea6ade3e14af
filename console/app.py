"""The console as an aiohttp Application: middlewares in order, then every view's routes.

Order matters: security headers wrap everything; the session middleware resolves the user and
enforces :func:`console.auth.public` / :func:`console.auth.roles`; the CSRF check runs for
signed-in and sign-in writes alike. Adding a page = a module in ``console/views/`` (or, for a
feature folder's own pages, in that folder: ``tickets/views.py``) with ``routes`` listed in
:data:`VIEWS` (and, if it runs something beside its requests, a ``setup(app)`` that adds its
startup/cleanup).
"""

from __future__ import annotations

import importlib
from typing import Awaitable, Callable

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from console.auth import csrf_middleware, refusal_audit, session_middleware
from console.web_phone import CONNECT_SRC
from console.context import CONSOLE, Console
from console.guard import RETRY_AFTER
from ivr.store.failover import in_failover

VIEWS = (
    "console.views.signin",
    "console.views.home",
    "console.views.flows",
    "console.views.cluster",
    "tickets.views",
    "tickets.dead_views",
    "tickets.revisit_views",
    "tickets.dept_api",
    "supervision.views",
    "quality.views",
    "reports.views",
    "recording.views",
    "console.views.audit",
    "console.views.fairness",
    "console.views.wallboard",
    "console.views.desk",
)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@web.middleware
async def security_headers(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _headers(request, response)
        raise
    _headers(request, response)
    return response


@web.middleware
async def back_pressure(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """No free Redis connection in the console's bounded pool (console.context.console_redis), or
    Redis away or failing over longer than ``redis.failover_s``: 503 with Retry-After, never a 500
    (the browser or script tries again)."""
    try:
        return await handler(request)
    except (RedisConnectionError, RedisTimeoutError, RedisResponseError) as exc:
        if isinstance(exc, RedisResponseError) and not in_failover(exc):
            raise  # a refusal for good (WRONGTYPE, OOM, …) is a fault to see
        raise web.HTTPServiceUnavailable(text="服务繁忙，请稍后重试。", headers={"Retry-After": str(RETRY_AFTER)}) from None


def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if connect := request.get(CONNECT_SRC):  # a web phone's desk: its one WebSocket too (console/web_phone.py)
        response.headers["Content-Security-Policy"] += f"; connect-src {connect}"
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages may hold personal data


def create_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[security_headers, back_pressure, refusal_audit, session_middleware, csrf_middleware],
                          client_max_size=2 * 1024 * 1024)
    app[CONSOLE] = console
    for name in VIEWS:
        view = importlib.import_module(name)
        app.add_routes(view.routes)
        if hasattr(view, "setup"):  # a view's own startup/cleanup (background tasks, open streams)
            view.setup(app)
    return app
