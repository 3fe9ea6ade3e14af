"""Who may see what: every route is signed-in only unless marked :func:`public`, and limited to
roles with :func:`roles`; every write carries the session's CSRF token.

The middlewares look at the route's own handler (``request.match_info.handler``), so a
decorator on the handler is the whole declaration::

    @routes.get("/flows")
    @roles("admin")
    async def flows(request): ...

A signed-in request has ``request[USER]`` and ``request[SESSION]``. Writes (POST, PUT, PATCH,
DELETE) are refused with 403 unless the form field ``_csrf`` or the header ``X-CSRF-Token``
equals the session's token; the sign-in form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote
from typing import Awaitable, Callable, TypeVar

from aiohttp import web

from console.context import CONSOLE
from console.csrf import CSRF_FIELD, CSRF_HEADER, LOGIN_CSRF_COOKIE, SESSION, USER
from console.csrf import csrf_token, keep_login_csrf, set_cookie  # noqa: F401 (re-exported: views import them from here)
from console.pages import error_page
from console.users import Role, User

SESSION_COOKIE = "ivr_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H")


def public(handler: H) -> H:
    """Reachable without signing in (the sign-in page, static files, /metrics)."""
    setattr(handler, "_console_public", True)  # noqa: B010 (H is a callable type: mypy refuses the attribute)
    return handler


def signed_api(handler: H) -> H:
    """A machine API with its own authentication (an HMAC signature over the body: the
    departments' write-back): no session and no CSRF token, since no browser sends it."""
    setattr(handler, "_console_public", True)  # noqa: B010 (as in public())
    setattr(handler, "_console_signed", True)  # noqa: B010
    return handler


def roles(*allowed: Role) -> Callable[[H], H]:
    """Only users of these roles (others get 403); without it any signed-in user may."""

    def mark(handler: H) -> H:
        setattr(handler, "_console_roles", frozenset(allowed))  # noqa: B010 (as in public())
        return handler

    return mark


def current_user(request: web.Request) -> User:
    return request[USER]


def require_seat(request: web.Request, agent: str) -> User:
    """The signed-in user if they may act for seat ``agent`` (admins and supervisors: any seat;
    an agent: only its own); otherwise the 403 page."""
    user = request[USER]
    if user.role == "agent" and user.agent != agent:
        raise forbidden(request, "座席只能打开自己的工作台。")
    return user


REFUSED = web.RequestKey("refused", str)  # why this request was refused (audited on the way out)


def forbidden(request: web.Request, reason: str = "") -> web.HTTPForbidden:
    """The 403 every refusal uses (the page says why, in Mandarin); :func:`refusal_audit` writes
    it to the audit log, so an agent probing another seat, a flow or an unmasked number, and a
    forged form, all leave a line."""
    request[REFUSED] = reason or "您的角色无权查看此页面。"
    return error_page(request, web.HTTPForbidden, "无权访问", request[REFUSED])


@web.middleware
async def refusal_audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPForbidden:
        if REFUSED in request:
            user = request.get(USER)
            await request.app[CONSOLE].audit(user if user is not None else "anonymous", "console refused",
                                             {"method": request.method, "path": request.path},
                                             reason=f"refused: {request[REFUSED]}")
        raise


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    console = request.app[CONSOLE]
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await console.sessions.get(cookie) if cookie else None
    user = await console.users.get(session.user) if session else None
    if session and user and hmac.compare_digest(session.stamp, user.stamp):
        request[SESSION], request[USER] = session, user
    elif session:  # the user was removed, made again, or its password, role or seat changed
        await console.sessions.delete(session.id)
        user = None
    if getattr(route_handler, "_console_public", False):
        return await handler(request)
    if user is None:
        if request.method in SAFE_METHODS and "text/html" in request.headers.get("Accept", "text/html"):
            raise web.HTTPSeeOther(f"/login?next={quote(request.rel_url.path_qs)}" if request.path != "/" else "/login")
        raise web.HTTPUnauthorized(text="请先登录 (sign in first)")
    allowed = getattr(route_handler, "_console_roles", None)
    if allowed is not None and user.role not in allowed:
        raise forbidden(request)
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and not getattr(request.match_info.handler, "_console_signed", False):
        session = request.get(SESSION)
        expected = session.csrf if session else request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest((await _sent_token(request)).encode(), expected.encode()):
            raise forbidden(request, "表单已失效或缺少安全令牌（CSRF），请刷新页面后重试。")
    return await handler(request)


async def _sent_token(request: web.Request) -> str:
    if CSRF_HEADER in request.headers:
        return request.headers[CSRF_HEADER]
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD, "")
        return value if isinstance(value, str) else ""
    return ""

