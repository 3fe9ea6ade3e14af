"""Sign-in and sign-out. A sign-in is rate-limited per user and address and audited, both when
it succeeds and when it is refused; a new session id is issued each time (no fixation)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import web

from console.auth import SESSION, SESSION_COOKIE, public, set_cookie
from console.context import CONSOLE
from console.pages import render
from console.users import User, verify_password

routes = web.RouteTableDef()


def _safe_next(target: str) -> str:
    """Only a path on this site (never ``//host``, ``/\\host`` or ``http://…``: no open redirect)."""
    parts = urlsplit(target)
    local = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if local and not parts.netloc and not parts.scheme else "/"


@routes.get("/login")
@public
async def login_form(request: web.Request) -> web.Response:
    return render(request, "login.html", error="", name="", next=_safe_next(request.query.get("next", "/")))


@routes.post("/login")
@public
async def login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    form = await request.post()
    name, password = str(form.get("user", "")).strip()[:64], str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    address = request.remote or "unknown"

    def refused(message: str, status: int) -> web.Response:
        return render(request, "login.html", status=status, error=message, name=name, next=target)

    if await console.limiter.locked(name, address):
        await console.audit(name, "console sign-in", {"address": address}, reason="refused: too many failures")
        minutes = max(1, console.web.login_lockout // 60)
        return refused(f"失败次数过多，请 {minutes} 分钟后再试。", 429)
    user = await console.users.get(name)
    if not await _verify(user, password):
        await console.limiter.failed(name, address)
        await console.audit(name, "console sign-in", {"address": address}, reason="refused: wrong name or password")
        return refused("用户名或密码错误。", 401)
    assert user is not None
    await console.limiter.clear(name, address)
    old = request.get(SESSION)
    if old:
        await console.sessions.delete(old.id)
    session = await console.sessions.create(user.name)
    await console.audit(user, "console sign-in", {"address": address, "role": user.role})
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, session.id)
    raise response


async def _verify(user: User | None, password: str) -> bool:
    """argon2 takes tens of milliseconds of CPU: off the event loop that serves calls."""
    return await asyncio.to_thread(verify_password, user, password)


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    await request.app[CONSOLE].sessions.delete(request[SESSION].id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
