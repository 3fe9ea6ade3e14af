"""Sign-in and sign-out. A sign-in is counted against its budgets before the password is
checked (console/guard.py) and audited, both when it succeeds and when it is refused; a new
session id is issued each time (no fixation); signing out ends the user's open event streams."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from console.auth import SESSION, SESSION_COOKIE, USER, public, set_cookie
from console.clientaddr import client_address
from console.context import CONSOLE
from console.guard import RETRY_AFTER, Busy
from console.pages import render
from console.users import User, verify_password
from console.web_phone import PhoneAuthError, revoke_account

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
    """Counted first (console/guard.py), checked second, audited always."""
    console = request.app[CONSOLE]
    form = await request.post()
    name, password = str(form.get("user", "")).strip()[:64], str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    address = client_address(request, console.trusted_proxies)

    async def refused(message: str, status: int, why: str) -> web.Response:
        await console.audit(name, "console sign-in", {"address": address}, reason=f"refused: {why}")
        response = render(request, "login.html", status=status, error=message, name=name, next=target)
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    try:  # no free connection in the console's pool (a flood) is a refusal like the others: audited
        spent, known = await console.guard.reserve(name, address)
        user = None if spent else await console.users.get(name)
    except (RedisConnectionError, RedisTimeoutError):
        return await refused("登录请求过多，请稍后再试。", 503, "busy")
    if spent:
        minutes = max(1, console.web.login_lockout // 60)
        return await refused(f"失败次数过多，请 {minutes} 分钟后再试。", 429, TOO_MANY.get(spent, spent))
    try:
        right = await console.guard.check(lambda: verify_password(user, password))
    except Busy:
        return await refused("登录请求过多，请稍后再试。", 503, "busy")
    if not right:
        return await refused("用户名或密码错误。", 401, "wrong name or password")
    assert user is not None
    await console.guard.succeeded(name, address, known)
    old = request.get(SESSION)
    if old:
        await console.sessions.delete(old.id)
    session = await console.sessions.create(user)
    await console.audit(user, "console sign-in", {"address": address, "role": user.role})
    await _revoke_phone(request, user, "sign-in")  # the phone of an earlier sign-in elsewhere stops
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, session.id)
    raise response


TOO_MANY = {"pair": "too many failures", "address": "too many failures from this address",
            "user": "too many failures for this user", "all": "too many failures in all"}


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    await console.sessions.delete(request[SESSION].id)
    await console.users.changed(request[USER].name)
    await _revoke_phone(request, request[USER], "sign-out")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def _revoke_phone(request: web.Request, user: User, why: str) -> None:
    """An agent's web-phone password (console/web_phone.py) replaced by one nobody holds, audited;
    Asterisk out of reach does not stop the sign-in or sign-out (the failure is audited)."""
    console = request.app[CONSOLE]
    if user.role != "agent":
        return
    try:
        revoked = await revoke_account(console.settings(), user.agent)
    except PhoneAuthError as exc:
        await console.audit(user, "desk phone account revoked", {"agent": user.agent, "on": why}, reason=f"failed: {exc}")
        return
    if revoked:
        await console.audit(user, "desk phone account revoked", {"agent": user.agent, "on": why})
