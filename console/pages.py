"""Server-rendered pages: one Jinja2 environment (autoescaped), the navigation, error pages.

Every page extends ``templates/base.html`` and is rendered with :func:`render`, which adds the
signed-in user, the navigation of the user's role and ``csrf_field()`` for forms. A view adds
its entry to the navigation with :func:`nav` when its module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from console.csrf import CSRF_FIELD, USER, csrf_token, keep_login_csrf
from console.users import Role

TEMPLATES = Path(__file__).parent / "templates"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    roles: frozenset[Role]
    order: int


_NAV: list[NavItem] = []


def nav(path: str, label: str, *roles: Role, order: int = 50) -> None:
    """Show ``label`` linking to ``path`` in the menu of these roles (lower ``order`` first)."""
    if all(item.path != path for item in _NAV):
        _NAV.append(NavItem(path, label, frozenset(roles), order))
        _NAV.sort(key=lambda item: item.order)


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    user = request.get(USER)
    token = csrf_token(request)
    html = _env.get_template(template).render(
        user=user,
        nav=[item for item in _NAV if user and user.role in item.roles],
        path=request.path,
        csrf_token=token,
        csrf_field=lambda: Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'),
        **context,
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    keep_login_csrf(request, response)
    return response


def error_page(request: web.Request, kind: type[web.HTTPException], title: str, message: str) -> Any:
    """An HTTP error (raise it) with a Mandarin page as its body."""
    body = render(request, "error.html", title=title, message=message).text
    return kind(text=body, content_type="text/html")
