"""Playing and downloading a ticket's recordings in the console (issue 21 item 3; docs/recording.md).

The ticket page's recordings (``ticket_recordings.html``, included by ``ticket.html``) each have a
form: a reason, 播放 or 下载 (CSRF like every form). Its POST checks who may (supervisors and
admins any call, an agent only one its own seat talked on (a callback's too) and only if ``recording.agents_play_own``:
:func:`recording.rules.playback_refusal`), verifies the file against the ticket (size and
SHA-256), writes the audit line with the reason (the same log and reason rule as unmasking a
caller number), and only then issues a grant (recording/grants.py). Play: a page whose <audio>
fetches the file by range with the grant; download: a redirect to the same URL, served as an
attachment. A refusal is audited too: by role through :func:`console.auth.forbidden` (the
``console refused`` line), a missing reason, a missing, altered or deleted file here. The GET that
serves the bytes writes no line (a seek is a request): the grant it carries was audited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from console.auth import current_user, forbidden
from console.context import CONSOLE
from console.csrf import SESSION
from console.pages import error_page, render, ticket_store
from recording.grants import Checked, Grant, check, issue, lookup, session_digest
from recording.expect import seats_of
from recording.rules import failed_label, incomplete_label, playback_refusal
from tickets.audit import AuditError, check_reason
from tickets.export import local_time
from tickets.model import Recording, Ticket

routes = web.RouteTableDef()
RECORDING = r"/tickets/{number:[0-9]{8}-[0-9]{3,16}-[0-9]{5,}}/recordings/{index:[1-9][0-9]{0,2}}"
AUDIO_TYPE = "audio/ogg"  # Ogg Opus (recording.rules.STORED_SUFFIX)
STATE_TEXT = {"missing": "录音文件缺失", "altered": "录音文件已被改动", "deleted": "录音已按保存期限删除", "failed": "录音失败"}
COMMANDS = {"play": "console recording play", "download": "console recording download"}


@routes.post(RECORDING + "/{purpose:play|download}")
async def request_recording(request: web.Request) -> web.StreamResponse:
    console, user = request.app[CONSOLE], current_user(request)
    ticket, rec, index = await _recording(request)
    purpose = request.match_info["purpose"]
    refusal = playback_refusal(user.role, user.agent, seats_of(ticket, rec), console.settings().recording.agents_play_own)
    if refusal:
        raise forbidden(request, refusal)  # audited on the way out (console refused)
    what = {"number": ticket.number, "recording": str(index), "file": rec.file}
    reason = (await request.post()).get("reason")
    try:
        reason_text = check_reason(str(reason or ""))
    except ValueError:
        await _audit(request, purpose, {**what, "refused": "no reason"}, "")
        raise error_page(request, web.HTTPBadRequest, "需要理由", "播放或下载录音必须填写理由（哪个案件、为何调听）。") from None
    root = Path(console.settings().recording.dir)
    checked: Checked = await asyncio.to_thread(check, rec, root)
    if checked.state != "ok" or checked.mark is None:
        await _audit(request, purpose, {**what, "refused": checked.state}, reason_text)
        kind = web.HTTPGone if checked.state == "deleted" else web.HTTPConflict
        raise error_page(request, kind, STATE_TEXT.get(checked.state, "录音不可用"), _state_message(checked.state, rec))
    await _audit(request, purpose, {**what, "sha256": rec.sha256}, reason_text)  # before any byte is served
    token = await issue(console.redis, Grant(user.name, session_digest(request[SESSION].id), ticket.number, index, rec.file,
                                             checked.mark, purpose))
    url = f"/tickets/{ticket.number}/recordings/{index}/audio?grant={token}"
    if purpose == "download":
        raise web.HTTPSeeOther(url)
    return render(request, "recording_player.html", t=ticket, rec=rec, index=index, audio_url=url,
                  minutes=10, time=local_time, incomplete=incomplete_label(rec.seconds, rec.expected) if rec.incomplete else "")


@routes.get(RECORDING + "/audio")
async def recording_audio(request: web.Request) -> web.StreamResponse:
    """The file, by range, for the holder of a grant: same user, same session, same recording."""
    console, user = request.app[CONSOLE], current_user(request)
    number, index = request.match_info["number"], int(request.match_info["index"])
    grant = await lookup(console.redis, request.query.get("grant", ""))
    session = request[SESSION]
    if grant is None:
        raise forbidden(request, "录音授权无效或已过期（10 分钟），请在工单页重新填写理由。")
    if not grant.matches(user.name, session.id, number, index):
        raise forbidden(request, "此录音授权不属于您或不属于这段录音。")
    path = grant.intact(Path(console.settings().recording.dir))
    if path is None:
        await _audit(request, grant.purpose, {"number": number, "recording": str(index), "file": grant.file,
                                              "refused": "altered after grant"}, "")
        raise error_page(request, web.HTTPConflict, STATE_TEXT["altered"], "授权后录音文件发生了变化，不予播放。")
    headers = {"Content-Type": AUDIO_TYPE}
    if grant.purpose == "download":
        headers["Content-Disposition"] = f'attachment; filename="{number}-{index}.opus"'
    return web.FileResponse(path, headers=headers)


async def _recording(request: web.Request) -> tuple[Ticket, Recording, int]:
    store = ticket_store(request)
    number, index = request.match_info["number"], int(request.match_info["index"])
    ticket = await store.by_number(number)
    if ticket is None or not 1 <= index <= len(ticket.recordings):
        raise error_page(request, web.HTTPNotFound, "未找到", f"工单 {number} 没有第 {index} 段录音。")
    return ticket, ticket.recordings[index - 1], index


async def _audit(request: web.Request, purpose: str, what: dict[str, Any], reason: str) -> None:
    """One line in the console's audit log; if it cannot be written nothing is served (503)."""
    try:
        await request.app[CONSOLE].audit(current_user(request), COMMANDS[purpose], what, reason=reason)
    except AuditError as exc:
        raise error_page(request, web.HTTPServiceUnavailable, "审计日志不可写", "不提供录音。", str(exc)) from None


def _state_message(state: str, rec: Recording) -> str:
    if state == "deleted":
        return f"该录音已于 {local_time(rec.deleted)[:10]} 按保存期限删除（{rec.deleted_why}）。"
    if state == "failed":
        return f"通话时{failed_label(rec.failed)}，没有可播放的录音。"
    if state == "altered":
        return "录音文件的大小或 SHA-256 与工单记录不符，可能已被改动，不予播放；请通知管理员（ivr recordings verify）。"
    return "录音文件不在磁盘上（或路径无效），不予播放；请通知管理员（ivr recordings verify）。"
