"""The request keys of a signed-in request and the CSRF token forms carry.

Its own module (below both :mod:`console.auth` and :mod:`console.pages`) so that pages can put the
token into every form and auth can answer a refusal with a page, without either importing the other.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from console.context import CONSOLE
from console.sessions import Session
from console.users import User

LOGIN_CSRF_COOKIE = "ivr_login_csrf"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session)
_NEW_LOGIN_CSRF = web.RequestKey("new_login_csrf", str)


def csrf_token(request: web.Request) -> str:
    """The token forms of this request must carry (the session's, or the sign-in cookie's)."""
    session = request.get(SESSION)
    if session:
        return session.csrf
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or request.get(_NEW_LOGIN_CSRF)
    if not token:
        token = request[_NEW_LOGIN_CSRF] = secrets.token_urlsafe(32)
    return token


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    """HttpOnly, SameSite=Strict, and Secure when the console is behind TLS (``web.secure_cookies``)."""
    response.set_cookie(name, value, httponly=True, samesite="Strict", path="/",
                        secure=request.app[CONSOLE].web.secure_cookies)


def keep_login_csrf(request: web.Request, response: web.StreamResponse) -> None:
    """Give the browser the sign-in form's cookie if this request made one."""
    token = request.get(_NEW_LOGIN_CSRF)
    if token:
        set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
