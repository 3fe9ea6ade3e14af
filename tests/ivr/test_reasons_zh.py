"""Every reason a validator can raise, and every engine warning, reads as Mandarin on a staff page
(ivr/core/reasons_zh.py): translated, or — a reason no pattern knows — the frame 暂无中文说明 with
the English only as the technical detail. The reasons are walked from the source (every
``ValueError``, ``SourceError``, ``ConfigError`` and ``….error(…, reason)`` with a literal or an
f-string), so a new English reason fails here until it is translated or knowingly listed in
``UNTRANSLATED`` (which may only shrink: a listed reason that is now translated fails too)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from ivr.core.calendar import load_calendar
from ivr.core.reasons_zh import UNKNOWN, explain, problem_zh
from testbed.wording import english_words

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ivr", "tickets", "queues", "recording", "supervision", "transfer", "tracking", "quality", "reports", "console")
RAISERS = {"ValueError", "SourceError", "ConfigError", "TransferError", "error"}
NAMES = ("chinesecalendar",  # a package an admin upgrades, named as pip names it
         # the keys of a flow's node an admin types, named as the file has them
         "var", "equals", "matches", "min_digits", "max_digits", "max_times", "otherwise", "subcenter", "number",
         "human_key", "nodes", "type", "start", "after_notice", "numbers", "variants",
         "compliance", "exempt")
FILLS = ("'x'", "1")  # a value in an f-string: quoted as repr() writes a name, or a number


def _text(node: ast.expr, fill: str) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else fill for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, fill), _text(node.right, fill)
        return None if left is None and right is None else (left or fill) + (right or fill)
    return None


@functools.cache
def reasons() -> dict[str, list[str]]:
    """``path:line`` → the reason raised there, once per fill."""
    out: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in RAISERS and _text(node.args[-1], "x") is not None:
                    out[f"{path.relative_to(REPO)}:{node.lineno}"] = [t for f in FILLS if (t := _text(node.args[-1], f))]
    return out


def untranslated() -> set[str]:
    """The reasons no pattern knows with either fill (as ``path: reason``, the reason with 'x')."""
    return {f"{where.rsplit(':', 1)[0]}: {texts[0]}" for where, texts in reasons().items()
            if all(explain(t).detail == t for t in texts)}


def test_every_validator_reason_reads_as_mandarin_on_a_staff_page() -> None:
    found = reasons()
    assert len(found) > 80  # the walk finds the validators (a broken walk must not pass)
    for where, texts in found.items():
        for text in texts:
            said = explain(f"flows/main.yaml:3:5: {text}")
            keys = re.findall(r"\w+", m[1]) if (m := re.search(r"\(expected (.+)\)", text)) else []  # names to type
            assert said.text.startswith("flows/main.yaml:3:5: ") and not english_words(said.text, [*NAMES, *keys]), (where, said)
            assert said.detail in ("", text) or said.detail in text, (where, said)


def test_a_new_english_reason_fails_until_it_is_translated() -> None:
    assert untranslated() == UNTRANSLATED


def test_engine_warnings_read_as_mandarin() -> None:
    calendar = load_calendar()
    warned = [w for year in range(2000, 2040) if (w := calendar.coverage_warning(year))]
    assert {w.split(" ")[2] for w in warned} == {"has", "for"}  # a year without data and a provisional one
    for warning in warned:
        said = explain(warning)
        assert not said.detail and not english_words(said.text, NAMES) and "年节假日日历" in said.text, said
    elderly = ("config/queues.yaml:95:11: priority.elderly.flow 'elderli' is not in config/flows/ (did you mean "
               "'elderly'?): registered elderly callers go straight to the general queue, without a greeting")
    assert problem_zh(elderly) == ("config/queues.yaml:95:11: priority.elderly.flow 指定的流程 'elderli' 不在 config/flows/ "
                                   "中（是否应为 'elderly'？）：已登记的老年人来电将直接进入普通队列，不播放问候语")


def test_an_unknown_reason_keeps_its_english_as_a_technical_detail_only() -> None:
    said = explain("[Errno 111] Connect call failed ('127.0.0.1', 5038)")
    assert (said.text, said.detail) == (UNKNOWN, "[Errno 111] Connect call failed ('127.0.0.1', 5038)")
    assert said.plain() == f"{UNKNOWN}（技术细节：[Errno 111] Connect call failed ('127.0.0.1', 5038)）"
    assert explain("a.yaml:2:5: nodes.x: Value error, something new") == Said_("a.yaml:2:5: nodes.x：取值无效：" + UNKNOWN,
                                                                                 "something new")
    assert explain("原因最长 200 字") == Said_("原因最长 200 字")  # the console's own reasons are Mandarin already
    assert explain("HTTP 503 Service Unavailable") == Said_("接收方返回 HTTP 503", "Service Unavailable")
    assert explain("no answer within 5.0 s") == Said_("5.0 秒内无应答")


def Said_(text: str, detail: str = "") -> object:
    from ivr.core.reasons_zh import Said

    return Said(text, detail)



REAL = {  # reasons as the checks write them with real values (the walk's samples fill values with 'x' or 1)
    "flows/main.yaml:3:1: flow 'main': worst case 20.5s to a human exceeds budget 15s: welcome[next] 3.5s → top[key 1] 17s":
        "flows/main.yaml:3:1: 流程 'main'：从接听到人工最长 20.5 秒，超出预算 15 秒：welcome[继续] 3.5 秒 → top[按键 1] 17 秒",
    "numbers.yaml:4:3: number 12345 (merged, flow main): worst case 30s to a human exceeds 15s: notice merged_notice 2s → "
    "top[key 1] 28s; shorten it, or say why not in its entry: compliance: {exempt: \"reason\"}":
        "numbers.yaml:4:3: 号码 12345（合并，流程 main）：从接听到人工最长 30 秒，超过 15 秒：过渡提示 merged_notice 2 秒 → "
        "top[按键 1] 28 秒；请缩短，或在该号码条目中写明理由（compliance: {exempt: \"理由\"}）",
    "flows/main.yaml:9:5: menu 'top': key 1 can end without a human (a hangup is reachable from 'bye')":
        "flows/main.yaml:9:5: 节点 'top'：按键 1 可能到达不了人工（从 'bye' 可到挂机）",
    "flows/main.yaml:2:1: start 'menu2' is not a node in this flow (did you mean 'menu'?)":
        "flows/main.yaml:2:1: start 指定的 'menu2' 不是本流程的节点（是否应为 'menu'？）",
    "numbers.yaml:7:3: number 12345: flow 'mian' is not in config/flows/ (did you mean 'main'?)":
        "numbers.yaml:7:3: 号码 12345：流程 'mian' 不在 config/flows/ 中（是否应为 'main'？）",
    "flows/main.yaml:5:3: duplicate key 'menu' (first defined at line 3)": "flows/main.yaml:5:3: 重复的配置项 'menu'（第 3 行已定义）",
    "sub-center 12366 (8001) is closed now (hours: workdays 08:30-17:30): not dialed; keep the caller or offer a callback":
        "分中心 12366（8001）现在不在服务时间（服务时间：workdays 08:30-17:30）：未拨出；请继续受理或提供回拨",
}


def test_the_checks_read_in_mandarin_with_real_values() -> None:
    assert {reason: problem_zh(reason) for reason in REAL} == REAL

UNTRANSLATED: set[str] = {  # shown as 暂无中文说明 with the English as a detail; translate, then drop the line
    "console/server.py: console port 'x':'x' 'x' (web.port from 'x')",
    "ivr/agi/fastagi.py: FastAGI route 'x' is already taken",
    "ivr/ami/users.py: 'x': 'x'",
    'ivr/ami/users.py: Asterisk did not answer',
    "ivr/ami/users.py: no secret for the AMI user 'x': set 'x' (the one Asterisk's manager.conf has)",
    "ivr/asterisk_conf/files.py: no such extra file to render: 'x' (only 'x')",
    "ivr/asterisk_conf/files.py: refused to render Asterisk's configuration: 'x'",
    "ivr/asterisk_conf/node.py: node 'x': there is no cluster section in config/, so no nodes",
    "ivr/asterisk_conf/pjsip.py: agent 'x': no SIP password (set 'x')",
    "ivr/asterisk_conf/pjsip.py: sip.bind is 'x': set sip.media_address to this server's address for RTP (otherwise Asterisk looks up its own host name and A.ROOT-SERVERS.NET on every call)",  # noqa: E501
    "ivr/asterisk_conf/supervision.py: supervisor 'x': no SIP password (set 'x')",
    "ivr/config/load.py: 'x' is already defined in 'x'",
    "ivr/config/load.py: 'x': number plan 'x' not found in 'x' (there: 'x')",
    "ivr/config/load.py: config directory 'x' does not exist",
    "ivr/config/load.py: environment 'x': unknown setting (known: 'x')",
    "ivr/config/secrets.py: 'x' is too short: use at least 'x' random characters (e.g. `openssl rand -base64 32`)",
    "ivr/config/secrets.py: missing caller key: set 'x' (at least 'x' random characters, the same on every engine sharing Redis; never kept in config/)",  # noqa: E501
    "ivr/core/calendar.py: 'x': bad range 'x'..'x'",
    "ivr/core/networks.py: not an IP address or network: 'x'",
    "ivr/core/qualify.py: qualify timeout 'x' s must be shorter than its interval ('x' s)",
    "ivr/core/yamlsource.py: 'x': 'x'",
    "ivr/flows/compiler.py: after_notice 'x' is not a node in this flow'x'",
    "ivr/flows/compiler.py: start 'x' is not a node in this flow'x'",
    "ivr/flows/lint.py: 'x' 'x': key 'x' can end without a human (a hangup is reachable from 'x')",
    "ivr/flows/lint.py: flow 'x': 'x' to a human exceeds budget 'x's: 'x'",
    "ivr/flows/validate.py: 'x' 'x' is not defined in config/'x'.yaml'x'",
    "ivr/flows/validate.py: 'x' is not a node in this flow'x'",
    "ivr/flows/validate.py: 'x' leads to one-key queue 'x': only a menu key may (a caller who pressed nothing did not choose 一键转人工)",
    "ivr/flows/validate.py: prompt 'x' is not in the prompt catalog'x'",
    "ivr/hot_reload.py: 'x': prompt 'x' is not in the prompt catalog'x'",
    "ivr/hot_reload.py: flow 'x' does not exist in config/flows/'x'",
    'ivr/hot_reload.py: number \'x\' (\'x\', flow \'x\'): \'x\' exceeds \'x\'s: \'x\'; shorten it, or say why not in its entry: compliance: {exempt: "reason"}',  # noqa: E501
    "ivr/hot_reload.py: number 'x': flow 'x' is not in config/flows/'x'",
    "ivr/hot_reload.py: the elderly flow ('x') may not hold a 'x' node: registered elderly callers skip every menu (allowed: 'x')",
    "ivr/kamrpc.py: BINRPC int 'x' does not fit 32 bits",
    'ivr/kamrpc.py: a BINRPC string cannot hold NUL',
    "ivr/prompts/catalog.py: 'x' is a template: name the recording after a variant, e.g. 'x'__12396",
    "ivr/prompts/catalog.py: 'x' is not a prompt id",
    "ivr/prompts/catalog.py: 'x' is not a valid prompt id (lower case, digits, single _)",
    "ivr/prompts/catalog.py: 'x'.'x': expected text, got 'x'",
    "ivr/prompts/catalog.py: 'x'.'x': placeholders differ from zh ('x')",
    "ivr/prompts/catalog.py: 'x'.sound: expected a path like digits/1, got 'x'",
    "ivr/prompts/catalog.py: 'x'.speed: expected words per minute (80-450), got 'x'",
    'ivr/prompts/catalog.py: \'x\'.variants: expected a list like - {\'x\': "12396"}',
    'ivr/prompts/catalog.py: \'x\'.variants[\'x\'].\'x\': expected letters/digits in quotes, like "12396"',
    "ivr/prompts/catalog.py: 'x'.variants['x']: 'x' is defined twice",
    "ivr/prompts/catalog.py: 'x'.variants['x']: expected exactly 'x'",
    "ivr/prompts/catalog.py: 'x': a template cannot set sound",
    "ivr/prompts/catalog.py: 'x': expected a mapping with zh (and en)",
    "ivr/prompts/catalog.py: 'x': no prompt catalog here",
    "ivr/prompts/catalog.py: 'x': no zh text and no recording in 'x'/",
    "ivr/prompts/catalog.py: 'x': unknown key 'x'",
    "ivr/prompts/catalog.py: 'x': variants given but zh has no {placeholder}",
    "ivr/prompts/catalog.py: expected a mapping 'prompts:' of prompt id → {zh, en}",
    'ivr/prompts/catalog.py: expected a mapping (engine, voice, speed, pitch)',
    "ivr/prompts/catalog.py: not a valid manifest: 'x'",
    "ivr/prompts/catalog.py: only engine 'espeak-ng' is supported",
    "ivr/prompts/catalog.py: two recordings for 'x': also 'x'",
    "ivr/prompts/catalog.py: voice.'x': expected 'x', got 'x'",
    "ivr/service.py: FastAGI port 'x':'x' 'x' (agi.port from 'x')",
    'ivr/service.py: missing AMI secret: set IVR_AMI_SECRET (never kept in config/)',
    "ivr/sip_publish.py: refused: device 'x', state 'x', eid 'x', resource 'x'",
    "ivr/store/elderly.py: id 'x' matches 'x' entries'x'",
    'ivr/store/failover.py: a Sentinel target has no URL',
    'ivr/store/failover.py: redis.sentinel_service is set but redis.sentinels names no sentinel',
    "queues/elderly.py: 'x' is not a phone number ('x'-'x' digits, optionally +86)",
    "queues/model.py: skill 'x': penalty 'x' must be 0-100",
    "queues/priority.py: 'x' has no configured priority: it is the route's own",
    "queues/sessions.py: 'x' is an empty window",
    "queues/sessions.py: line 'x' must be 3-16 digits",
    "recording/grants.py: not a purpose: 'x'",
    "recording/rules.py: not a ticket number: 'x'",
    "reports/model.py: unknown period 'x' (one of 'x')",
    'reports/tallies.py: row of another shape',
    'tickets/audit.py: an unmasked read needs a reason (who is called back, which case)',
    "tickets/dead_letters.py: bad event id 'x': expected <linkedid>:<event>, e.g. 1764552600.17:closed",
    "tickets/dead_letters.py: no webhook endpoint 'x' (tickets.webhooks: 'x')",
    "tickets/filters.py: 'x'until 'x' is not after 'x'since 'x'",
    "tickets/filters.py: bad 'x' 'x': expected a date (2026-12-01) or a time (2026-12-01T08:30, 2026-12-01T08:30+08:00)",
    "tickets/filters.py: bad 'x'limit 'x': expected a whole number of tickets, 1 or more",
    "tickets/filters.py: bad 'x'line 'x': expected the dialed number, digits only (12345, 12366, 3022782)",
    "tickets/filters.py: unknown disposition 'x' (one of 'x')",
    "tickets/model.py: unknown request type 'x' (one of 'x')",
    'tickets/settings.py: name exactly one of key_env (an environment variable) or key_file (a file outside the repo)',
    'tickets/settings.py: unmasked_caller sends caller numbers in full: the url must be https:// (or set plain_http: true for a trusted local hop)',  # noqa: E501
    'tickets/store.py: this ticket store has no caller_key: it cannot index or find tickets by caller',
    'tickets/webhooks.py: the push worker needs a Redis client with decode_responses=True',
    "tickets/workflow.py: 'x' needs 'x'",
    "tickets/workflow.py: 'x' takes no 'x'",
    "tickets/workflow.py: control character U+'x' not allowed",
    'tickets/workflow.py: one line',
    'tracking/retention.py: retention_days must be at least 1',
    "transfer/ami.py: cannot look ticket 'x' up: 'x'",
    "transfer/ami.py: cannot read where seat 'x' talks: 'x'",
    "transfer/ami.py: no ticket 'x' (give a ticket number, a linkedid or an agent)",
    "transfer/control.py: call 'x' is not talking to an agent: a three-party bridge needs one",
    "transfer/control.py: sub-center 'x' ('x') is closed now'x': not dialed; keep the caller or offer a callback",
    "transfer/desk_client.py: cannot reach Asterisk'x': 'x'",
    "transfer/where.py: 'x' is no node of this cluster",
    "transfer/where.py: call 'x' is on no node of this cluster",
}


def test_an_engines_leases_read_in_mandarin() -> None:
    from ivr.core import labels

    assert labels.leases("follow#12,nodes#3,retention#5,hours#1") == "跟踪通话#12、节点故障处理#3、保留期清理#5、分中心时段发布#1"
    assert labels.leases("—") == "—"


def test_a_push_that_cannot_connect_names_the_host_in_mandarin() -> None:
    said = explain("ClientConnectorError: Cannot connect to host 127.0.0.1:19526 ssl:default [Connect call failed]")
    assert (said.text, said.detail) == ("无法连接 127.0.0.1:19526", "ssl:default [Connect call failed]")
