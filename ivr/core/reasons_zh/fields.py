"""pydantic's messages for one field of a settings model (``agents.1001.pin: Field required``)."""

from __future__ import annotations

import re

from ivr.core.reasons_zh._shared import Kinds, kinds

KINDS: Kinds = kinds(
    ("field", r"(?P<name>[\w.\[\]-]+): (?P<msg>Field required|Input should be .*|Value error, .*)", "{name}：{msg}"),
)
MESSAGES = tuple((re.compile(pattern), text) for pattern, text in {  # pydantic's message → Mandarin
    r"Field required": "缺少此项", r"Input should be a valid integer.*": "应为整数", r"Input should be a valid number.*": "应为数字",
    r"Input should be a valid string": "应为文字", r"Input should be a valid boolean.*": "应为 true 或 false",
    r"Input should be a valid (?:list|array)": "应为列表", r"Input should be a valid dictionary.*": "应为键值表",
    r"Input should be greater than or equal to (?P<n>\S+)": "应不小于 {n}", r"Input should be greater than (?P<n>\S+)": "应大于 {n}",
    r"Input should be less than or equal to (?P<n>\S+)": "应不大于 {n}", r"Input should be less than (?P<n>\S+)": "应小于 {n}",
    r"Input should be (?P<choices>'.*)": "应为 {choices} 之一",
    r"Value error, (?P<text>.*)": "取值无效：{text}",  # a validator's own reason: worded in turn
}.items())
