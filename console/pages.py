"""Server-rendered pages: one Jinja2 environment (autoescaped), the navigation, error pages.

Every page extends ``templates/base.html`` and is rendered with :func:`render`, which adds the
signed-in user, the navigation of the user's role and ``csrf_field()`` for forms. A view adds
its entry to the navigation with :func:`nav` when its module is imported, and a part of another
feature's page with :func:`extend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from console.context import CONSOLE
from console.csrf import CSRF_FIELD, USER, csrf_token, keep_login_csrf
from console.users import Role
from ivr.core import labels

if TYPE_CHECKING:
    from tickets.store import TicketStore
    from tickets.model import Ticket

TEMPLATES = Path(__file__).parent / "templates"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.globals["zh"] = labels  # the Mandarin of stored English values (ivr/core/labels.py)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    roles: frozenset[Role]
    order: int


_NAV: list[NavItem] = []
Extra = Callable[[web.Request, dict[str, Any]], dict[str, Any]]
_EXTRAS: dict[str, list[Extra]] = {}


def nav(path: str, label: str, *roles: Role, order: int = 50) -> None:
    """Show ``label`` linking to ``path`` in the menu of these roles (lower ``order`` first)."""
    if all(item.path != path for item in _NAV):
        _NAV.append(NavItem(path, label, frozenset(roles), order))
        _NAV.sort(key=lambda item: item.order)


def extend(template: str, extra: Extra) -> None:
    """Let a feature add a part to another feature's page: the page includes the part's template
    (one line), and ``extra(request, context)`` gives that template its values when the page is
    rendered (the quality panel on the ticket page: quality/views.py)."""
    if extra not in _EXTRAS.setdefault(template, []):
        _EXTRAS[template].append(extra)


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    for extra in _EXTRAS.get(template, ()):
        context = {**context, **extra(request, context)}
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


def error_page(request: web.Request, kind: type[web.HTTPException], title: str, message: str, detail: str = "") -> Any:
    """An HTTP error (raise it) with a Mandarin page as its body: ``message`` an English reason
    (a validator's) is framed in Mandarin (ivr/core/reasons_zh/); ``detail``, an engine's own
    words (an OS error), shown as a technical detail."""
    body = render(request, "error.html", title=title, message=message, detail=detail).text
    return kind(text=body, content_type="text/html")


def ticket_store(request: web.Request) -> TicketStore:
    """The console's ticket store; a console started without one answers every ticket page 503."""
    store = request.app[CONSOLE].tickets
    if store is None:
        raise error_page(request, web.HTTPServiceUnavailable, "不可用", "此控制台未连接工单库。")
    return store


async def posted_ticket(request: web.Request) -> "tuple[Ticket, Any]":
    """The ticket a form posted to ``/…/{number}`` names, and the form; 404 with a page when there is none."""
    number, form = request.match_info["number"], await request.post()
    ticket = await ticket_store(request).by_number(number)
    if ticket is None:
        raise error_page(request, web.HTTPNotFound, "未找到", f"没有工单 {number}。")
    return ticket, form


def query_date(request: web.Request, name: str, default: date) -> date:
    """The query's ``name`` as a day (2026-12-01), ``default`` when it is absent; 400 when malformed."""
    text = request.query.get(name, "").strip()
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        raise error_page(request, web.HTTPBadRequest, "日期无效", "日期格式应为 2026-12-01。") from None
