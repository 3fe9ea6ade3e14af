"""Every reason a validator can raise, and every engine warning, reads as Mandarin on a staff page
(ivr/core/reasons_zh/): translated, or — a reason no pattern knows — the frame 暂无中文说明 with
the English only as the technical detail. The reasons are walked from the source (every
``ValueError``, ``SourceError``, ``ConfigError``, ``UnsafeValue``, a seat's, a supervisor's or a
department event's refusal, ``….error(…, reason)`` and a problem added to a list of problems, as
``ivr check`` reports them, with a literal or an f-string), so a new
English reason fails here until it is translated or knowingly listed in ``UNTRANSLATED`` (empty
today; it may only shrink: a listed reason that is now translated fails too)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Iterator

from ivr.core.calendar import load_calendar
from ivr.core.reasons_zh import UNKNOWN, explain, problem_zh
from testbed.wording import english_words

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ivr", "tickets", "queues", "recording", "supervision", "transfer", "tracking", "quality", "reports", "console")
RAISERS = {"ValueError", "SourceError", "ConfigError", "TransferError", "UnsafeValue", "SeatError", "SupervisionError", "Refused",
           "KeyMissing", "error"}
NAMES = ("chinesecalendar",  # a package an admin upgrades, named as pip names it
         # the keys of a flow's node an admin types, named as the file has them
         "var", "equals", "matches", "min_digits", "max_digits", "max_times", "otherwise", "subcenter", "number",
         "human_key", "nodes", "type", "start", "after_notice", "numbers", "variants",
         "compliance", "exempt",
         # the settings, catalog keys and event names an admin or a department's system types as they are
         "cluster", "qualify", "penalty", "unmasked_caller", "url", "https", "plain_http", "true", "key_env", "key_file",
         "caller_key", "decode_responses", "True", "sound", "engine", "voice", "speed", "pitch", "zh", "en", "prompts",
         "espeak-ng", "until", "since", "line", "limit", "--node", "retention_days", "IVR_AMI_SECRET", "entityid", "eid",
         "linkedid", "event", "closed", "config", "openssl", "rand", "due", "YYYY-MM-DD", "listen", "whisper", "barge",
         "general", "skill", "flow", "callback", "agent_key", "overflow", "mode", "notice", "timeout", "rotatestrategy", "none",
         "asterisk", "UMask", "umask", "LoggerRotate", "BYE", "dtls_cert", "dtls_key",
         "stun", "turn", "turns", "transport", "udp", "tcp", "turn_secret", "ice_servers", "env", "file",
         # the programs and protocols an admin looks up under these names
         "Asterisk", "FastAGI", "Redis", "Sentinel", "RTP", "URL", "BINRPC", "NUL", "URI", "DNS", "IP", "sip", "ISO", "UTC",
         "STUN", "TURN", "ICE")
FILLS = ("'x'", "x", "1")  # a value in an f-string: quoted as repr() writes a name, a bare name, or a number
NAMED = {  # the real forms of a value the walk cannot guess from its expression ("file:name" or "name")
    "suggest": ("", " (did you mean 'x'?)"),  # ivr.flows.compiler.suggest: nothing, or a close name
    "control.py:when": ("", " (hours: x x)"),  # a closed sub-center's hours, when it has them
    "got": ("worst case 1s", "no path reaches a human"),  # the lint's worst case
    "validate.py:what": ("queue", "out-of-scope matter"),
    "service.py:what": ("is already in use", "cannot be opened (x)"), "server.py:what": ("is already in use",),
    "catalog.py:kind": ("int", "str"),  # a voice setting's type
    "users.py:refused": ("Asterisk refused the transfer",),
    "option": ("--", ""),  # a ticket filter's option prefix: the command line's, or none on a page
    "conftext.py:what": ("title", "dialplan text"),  # a refused value's field (conftext._refuse)
    "conftext.py:why": ("character ';'", "';' (a comment)", "control or line-break character U+000A"),
    "err['msg']": ("Field required",),  # pydantic's message for a field
    "load.py:where": ("config",), "load.py:origins.get(path_, 'config')": ("config",),  # a problem no file is known for
    "load.py:reason": ("skill 'x' is served by no queue",), "load.py:path_": ("agents.x.name",),
    "load.py:why": ("control or line-break character U+000A",),
    "retention.py:log_file.path": ("/var/log/asterisk/full",), "retention.py:e": ("[Errno 13] Permission denied: 'x'",),
}


def _fill(node: ast.FormattedValue, i: int, file: str) -> str:
    """A value as it would be written: a name's real forms (:data:`NAMED`), a number where it is
    formatted as one, a repr quoted, or a fill."""
    value = node.value
    name = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else ast.unparse(value)
    if (forms := NAMED.get(f"{file}:{name}", NAMED.get(name))) is not None:
        return forms[i % len(forms)]
    if isinstance(value, ast.IfExp) and (said := _text(value.body, i, file)) is not None:
        return said  # a part said only sometimes: as when it is
    if node.format_spec is not None:
        return "1"
    return "'x'" if node.conversion == ord("r") and i < 2 else FILLS[i]


def _text(node: ast.expr, i: int, file: str) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else _fill(v, i, file) for v in node.values
                       if isinstance(v, (ast.Constant, ast.FormattedValue)))
    if isinstance(node, ast.IfExp):  # a part said only sometimes: as when it is
        return _text(node.body, i, file)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, i, file), _text(node.right, i, file)
        return None if left is None and right is None else (left or FILLS[i]) + (right or FILLS[i])
    return None


def _last_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _stated(tree: ast.AST) -> Iterator[tuple[int, ast.expr]]:
    """(line, reason) of each reason a module states: a raise's message, and a problem added to a
    list of problems (``problems.append``, ``problems += [...]``, an append in a ``…_problems()``
    function: what ``ivr check`` reports), the reason of a (path, reason) pair its last part."""
    in_problems = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name.endswith("problems")
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            name = _last_name(node.func)
            if name in RAISERS:
                yield node.lineno, node.args[-1]
            elif name == "append" and (id(node) in in_problems or _last_name(node.func.value).endswith("problems")):  # type: ignore[attr-defined]
                said = node.args[0]
                yield node.lineno, said.elts[-1] if isinstance(said, ast.Tuple) and said.elts else said
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and isinstance(node.value, (ast.List, ast.ListComp)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_last_name(t).endswith("problems") for t in targets):
                for said in node.value.elts if isinstance(node.value, ast.List) else [node.value.elt]:
                    yield node.lineno, said


@functools.cache
def reasons() -> dict[str, list[str]]:
    """``path:line`` → the reason stated there, once per fill."""
    out: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for line, said in _stated(ast.parse(path.read_text(encoding="utf-8"))):
                for k, arg in enumerate([said.body, said.orelse] if isinstance(said, ast.IfExp) else [said]):
                    if _text(arg, 0, path.name) is not None:  # (each branch of "a if … else b")
                        out[f"{path.relative_to(REPO)}:{line}{'+' * k}"] = [
                            t for i in range(len(FILLS)) if (t := _text(arg, i, path.name))]
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
    # an admin's common mistakes: a node or prompt misspelt, a secret not set, an address that is none
    "flows/main.yaml:12:9: 'menu3' is not a node in this flow (did you mean 'menu'?)":
        "flows/main.yaml:12:9: 'menu3' 不是本流程的节点（是否应为 'menu'？）",
    "config/queues.yaml:9:5: sessions mayor: prompt 'mayor_sesion' is not in the prompt catalog (did you mean 'mayor_session'?)":
        "config/queues.yaml:9:5: sessions mayor：语音 'mayor_sesion' 不在语音目录中（是否应为 'mayor_session'？）",
    "missing AMI secret: set IVR_AMI_SECRET (never kept in config/)": "未设置 AMI 密码：请设置 IVR_AMI_SECRET（不得写入 config/）",
    "agent 1001: no SIP password (set IVR_AGENT_SECRET_1001)": "座席 1001：未设置 SIP 密码（请设置 IVR_AGENT_SECRET_1001）",
    "missing caller key: set IVR_CALLER_KEY (at least 32 random characters, the same on every engine sharing Redis; "
    "never kept in config/)":
        "未设置来电号码密钥：请设置 IVR_CALLER_KEY（至少 32 个随机字符，共用同一 Redis 的各引擎须相同；不得写入 config/）",
    "flows/main.yaml:1:1: flow 'main': no path reaches a human to a human exceeds budget 15s: welcome[next] 3.5s":
        "flows/main.yaml:1:1: 流程 'main'：没有到达人工的路径，超出预算 15 秒：welcome[继续] 3.5 秒",
    "config/console.yaml:3:9: web.host: Value error, 'a b' is not a host name or IP address":
        "config/console.yaml:3:9: web.host：取值无效：'a b' 不是主机名或 IP 地址",
    "config/queues.yaml:12:7: overflow 'genral' is not a defined queue": "config/queues.yaml:12:7: overflow 'genral' 不是已定义的队列",
    "config/queues.yaml:30:9: skill 'taxes' is served by no queue": "config/queues.yaml:30:9: 技能 'taxes' 没有队列提供服务",
    "FastAGI port 127.0.0.1:4573 cannot be opened (Permission denied) (agi.port from config/engine.yaml:2:9)":
        "FastAGI 端口 127.0.0.1:4573 无法打开（agi.port 设于 config/engine.yaml:2:9）（技术细节：Permission denied）",
}


def test_the_checks_read_in_mandarin_with_real_values() -> None:
    assert {reason: problem_zh(reason) for reason in REAL} == REAL


def test_the_validators_own_words_read_in_mandarin() -> None:
    """Reasons made by the code that writes them (not a sample): a weak secret as ``ivr check`` reports
    it, an unsafe value refused before Asterisk's files are written, a misspelt prompt with its suggestion."""
    from ivr.core import conftext, secret_policy
    from ivr.flows.compiler import suggest

    short = explain(secret_policy.secret_problem("IVR_AMI_SECRET", "abc123") or "")
    assert not short.detail and short.text.startswith("IVR_AMI_SECRET 强度不足：仅 6 个字符，至少需要 16 个（例如 `openssl rand"), short
    same = explain(secret_policy.secret_problem("IVR_AGENT_SECRET_1001", "ab" * 10) or "")
    assert not same.detail and same.text.startswith("IVR_AGENT_SECRET_1001 强度不足：仅 2 个不同字符，至少需要 8 个（例如"), same
    semicolon = explain(secret_policy.secret_problem("IVR_AMI_SECRET", "k3;Xq9!vT2#mLp8zR") or "")
    assert not semicolon.detail and semicolon.text.startswith(
        "IVR_AMI_SECRET：密码不能包含 ';'（Asterisk 配置文件将其视为注释）（例如"), semicolon
    try:
        conftext.host("a b")
    except conftext.UnsafeValue as exc:
        assert problem_zh(f"refused to render Asterisk's configuration: {exc}") == "已拒绝生成 Asterisk 配置：'a b' 不是主机名或 IP 地址"
    else:
        raise AssertionError("a host name with a space passed")
    prompt = f"prompt 'welcom' is not in the prompt catalog{suggest('welcom', ['welcome', 'bye'])}"
    assert problem_zh(f"flows/main.yaml:7:13: {prompt}") == "flows/main.yaml:7:13: 语音 'welcom' 不在语音目录中（是否应为 'welcome'？）"

UNTRANSLATED: set[str] = set()  # shown as 暂无中文说明 with the English as a detail; translate rather than list one


def test_an_engines_leases_read_in_mandarin() -> None:
    from ivr.core import labels

    assert labels.leases("follow#12,nodes#3,retention#5,hours#1") == "跟踪通话#12、节点故障处理#3、保留期清理#5、分中心时段发布#1"
    assert labels.leases("—") == "—"


def test_a_push_that_cannot_connect_names_the_host_in_mandarin() -> None:
    said = explain("ClientConnectorError: Cannot connect to host 127.0.0.1:19526 ssl:default [Connect call failed]")
    assert (said.text, said.detail) == ("无法连接 127.0.0.1:19526", "ssl:default [Connect call failed]")
