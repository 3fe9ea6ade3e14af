"""What the simulator says, in English for ``ivr simulate`` and in Mandarin for the console.

One format string per kind of line, the same fields in both languages, so the two outputs say
the same things in the same order (tests/ivr/flows/test_sim_words.py keeps their fields equal).
"""

from __future__ import annotations

from typing import Mapping

Words = Mapping[str, str]

EN: Words = {
    "start": "call to {dialed} from {caller} at {at:%Y-%m-%d %H:%M %a}, config version {version}",
    "lint": "lint: {problem}",
    "demo": "tickets: demo ticket {number} of {caller} (key {key})",
    "path": "path: {path}",
    "no_path": "(none)",
    "hung_up": "caller hung up after {seconds:g}s; keys {keys}",
    "routed": "route: {route} after {seconds:g}s; keys {keys}",
    "no_keys": "none",
    "error": "engine error: {error}",
    "play_sound": "play {sound}",
    "play": "play {pid} 「{text}」 {seconds:g}s{estimated}",
    "estimated": " (estimated)",
    "wait": "wait up to {seconds:g}s for 1 digit",
    "wait_digits": "wait up to {seconds:g}s per digit for {digits} digits",
    "hangs_up": "caller hangs up",
    "presses": "caller presses {digits}",
    "timeout": "no input (timeout)",
    "say_digits": "say digits {digits}",
    "say_number": "say number {number}",
    "exec": "exec {application}({args})",
    "queue": "queue {queue} (priority {priority})",
    "closed": "{trunk} closed now (its hours): not dialed; subcenter_closed, then queue {fallback} or a callback",
    "transfer": "transfer to {number} via trunk {trunk} (ring {ring}s, then queue {fallback})",
    "hangup": "hangup",
}

ZH: Words = {
    "start": "模拟来电：{caller} 拨打 {dialed}，时间 {at:%Y-%m-%d %H:%M}，配置版本 {version}",
    "lint": "流程检查：{problem}",
    "demo": "示例工单 {number}（来电 {caller}，按键输入 {key}）",
    "path": "经过节点：{path}",
    "no_path": "（无）",
    "hung_up": "{seconds:g} 秒后市民挂机；按键 {keys}",
    "routed": "去向：{route}，用时 {seconds:g} 秒；按键 {keys}",
    "no_keys": "无",
    "error": "引擎错误：{error}",
    "play_sound": "播放 {sound}",
    "play": "播放「{text}」{seconds:g} 秒{estimated}",  # staff know prompts by their words
    "estimated": "（估算）",
    "wait": "等待按键，最长 {seconds:g} 秒，1 位",
    "wait_digits": "等待按键，每位最长 {seconds:g} 秒，共 {digits} 位",
    "hangs_up": "市民挂机",
    "presses": "市民按 {digits}",
    "timeout": "未按键（超时）",
    "say_digits": "逐位播报 {digits}",
    "say_number": "播报数字 {number}",
    "exec": "执行 {application}({args})",
    "queue": "转人工排队 {queue}（优先级 {priority}）",
    "closed": "{trunk} 当前不在服务时间，不拨打；播放分中心下班提示，再转人工排队 {fallback} 或预约回拨",
    "transfer": "转接分中心 {trunk}（{number}，振铃 {ring} 秒，无人接听则转人工排队 {fallback}）",
    "hangup": "挂机",
}
