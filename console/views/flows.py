"""Flows and the number plan: list and view the YAML, check a draft (the ``ivr check`` report),
simulate a call with typed keys, publish (admins), see and roll back to earlier versions.

Admins and supervisors may look, check and simulate; only admins publish or roll back. Every
publish and rollback, refused or not, is in the audit log (flow or number-plan change).
"""

from __future__ import annotations

from aiohttp import web

from console.auth import current_user, roles
from console.context import CONSOLE, Console
from console.engine_status import engine_table
from console.pages import error_page, nav, render
from console.publish import ConfigFiles, Outcome, editable_files, is_number_plan
from ivr.check_report import relative, report
from ivr.flows.sim_words import ZH
from ivr.flows.simulator import script, simulate

routes = web.RouteTableDef()
nav("/flows", "流程与号码", "admin", "supervisor", order=40)
FILE = r"{rel:(flows/|plans/)?[a-z0-9_.-]+\.yaml}"


def _files(request: web.Request) -> tuple[Console, ConfigFiles]:
    console = request.app[CONSOLE]
    if console.files is None or console.flows is None:
        raise error_page(request, web.HTTPServiceUnavailable, "不可用", "此控制台未连接引擎，不能查看或发布流程。")
    return console, console.files


def _rel(request: web.Request, files: ConfigFiles) -> str:
    rel = request.match_info["rel"]
    try:
        files.path(rel)
    except KeyError:
        raise error_page(request, web.HTTPNotFound, "未找到", f"没有可编辑的配置文件 {rel}。") from None
    return rel


@routes.get("/flows")
@roles("admin", "supervisor")
async def flow_list(request: web.Request) -> web.Response:
    console, files = _files(request)
    assert console.flows is not None
    live = console.flows.current
    return render(request, "flows.html", files=editable_files(files.config_dir), live=report(live),
                  rel=lambda text: relative(text, files.config_dir),
                  version=live.version, numbers=sorted(live.settings.numbers.items()), plan=live.settings.plan,
                  engines=await engine_table(console.redis))


@routes.get("/flows/" + FILE)
@roles("admin", "supervisor")
async def flow_file(request: web.Request) -> web.Response:
    _, files = _files(request)
    rel = _rel(request, files)
    version = request.query.get("version")
    try:
        text = files.version_text(rel, version) if version else files.read(rel)
    except KeyError:
        raise error_page(request, web.HTTPNotFound, "未找到", f"{rel} 没有版本 {version}。") from None
    return _page(request, rel, text, None, shown_version=version or "")


@routes.post("/flows/" + FILE + "/check")
@roles("admin", "supervisor")
async def flow_check(request: web.Request) -> web.Response:
    _, files = _files(request)
    rel = _rel(request, files)
    text = str((await request.post()).get("text", ""))
    return _page(request, rel, text, Outcome(False, await files.check(rel, text)), checked=True)


@routes.post("/flows/" + FILE + "/publish")
@roles("admin")
async def flow_publish(request: web.Request) -> web.Response:
    _, files = _files(request)
    rel = _rel(request, files)
    text = str((await request.post()).get("text", ""))
    return await _publish(request, files, rel, text, "publish")


@routes.post("/flows/" + FILE + "/rollback")
@roles("admin")
async def flow_rollback(request: web.Request) -> web.Response:
    _, files = _files(request)
    rel = _rel(request, files)
    version = str((await request.post()).get("version", ""))
    try:
        text = files.version_text(rel, version)
    except KeyError:
        raise error_page(request, web.HTTPNotFound, "未找到", f"{rel} 没有版本 {version}。") from None
    return await _publish(request, files, rel, text, "rollback", rolled_back_to=version)


async def _publish(request: web.Request, files: ConfigFiles, rel: str, text: str, verb: str,
                   rolled_back_to: str = "") -> web.Response:
    console, user = request.app[CONSOLE], current_user(request)
    outcome = await files.publish(rel, text, user.name)
    what = {"file": rel, "outcome": "published" if outcome.ok else "refused", "version": outcome.version or None,
            "problems": len(outcome.report.problems) + len(outcome.errors)}
    if rolled_back_to:
        what["to"] = rolled_back_to
    kind = "number-plan" if is_number_plan(rel) else "flow"
    await console.audit(user, f"console {kind} {verb}", what)
    return _page(request, rel, text, outcome, status=200 if outcome.ok else 422)


def _page(request: web.Request, rel: str, text: str, outcome: Outcome | None, *, status: int = 200,
          checked: bool = False, shown_version: str = "") -> web.Response:
    console, files = _files(request)
    assert console.flows is not None
    return render(request, "flow.html", status=status, rel=rel, text=text, outcome=outcome, checked=checked,
                  number_plan=is_number_plan(rel), versions=files.versions(rel), shown_version=shown_version,
                  live_version=console.flows.version, can_publish=current_user(request).role == "admin",
                  root=files.config_dir, relative=relative)


@routes.get("/flows/simulate")
@roles("admin", "supervisor")
async def flow_simulate(request: web.Request) -> web.Response:
    console, _ = _files(request)
    assert console.flows is not None
    number = request.query.get("number", "12345").strip()
    keys = request.query.get("keys", "").strip()
    lines: list[str] = []
    if "number" in request.query:
        if not number.isdigit():
            lines.append("号码只能是数字。")
        else:
            await simulate(console.flows.current, number, script(keys.split(",") if keys else []), lines.append, words=ZH)
    return render(request, "simulate.html", number=number, keys=keys, lines=lines)


