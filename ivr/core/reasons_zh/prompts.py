"""The prompt catalog (ivr/prompts/catalog.py): prompts/catalog.yaml, its voice and recordings."""

from __future__ import annotations

from ivr.core.reasons_zh._shared import Fields, Kinds, kinds, one_of, q

_ID = r"(?P<name>[\w.\[\]'\"-]+)"  # a prompt id, or its field (welcome.variants[0].number)
EXPECTED = {  # what a value should have been (the catalog's "expected …, got …")
    "text": "文字", "str": "文字", "int": "整数", "float": "数字", "a path like digits/1": "路径（如 digits/1）",
    "words per minute (80-450)": "每分钟字数（80-450）",
}


def _placeholders(f: Fields) -> str:
    names = "无占位符" if f["names"] == "no placeholders" else f["names"]
    return f"{f['name']}：占位符与 zh 不一致（zh 为 {names}）"


KINDS: Kinds = kinds(
    ("no_catalog", r"(?P<v>.+): no prompt catalog here", "{v}：此处没有语音目录"),
    ("prompts_map", r"expected a mapping 'prompts:' of prompt id → \{zh, en\}", "应为键值表 'prompts:'（语音编号 → {{zh, en}}）"),
    ("voice_map", r"expected a mapping \(engine, voice, speed, pitch\)", "应为键值表（engine、voice、speed、pitch）"),
    ("engine", r"only engine 'espeak-ng' is supported", "engine 仅支持 'espeak-ng'"),
    ("template", _ID + r" is a template: name the recording after a variant, e.g. (?P<eg>\S+)",
     "{name} 是模板：录音文件应按变体命名，例如 {eg}"),
    ("template_sound", _ID + r": a template cannot set sound", "{name}：模板不能设置 sound"),
    ("prompt_id", q("v") + r" is not a (?:valid )?prompt id(?P<rule> \(lower case, digits, single _\))?",
     lambda f: f"{f['v']} 不是有效的语音编号{'（小写字母、数字、单个 _）' if f['rule'] else ''}"),
    ("two_recordings", r"two recordings for " + q("v") + r": also (?P<file>.+)", "{v} 有两个录音：另有 {file}"),
    ("entry", _ID + r": expected a mapping with zh \(and en\)", "{name}：应为含 zh（及 en）的键值表"),
    ("expected", _ID + r": expected (?P<kind>" + one_of(EXPECTED) + r"), got (?P<v>.+)",
     lambda f: f"{f['name']}：应为{EXPECTED[f['kind']]}，实为 {f['v']}"),
    ("placeholders", _ID + r": placeholders differ from zh \((?P<names>.*)\)", _placeholders),
    ("no_placeholder", _ID + r": variants given but zh has no \{placeholder\}", "{name}：设置了 variants，但 zh 中没有占位符"),
    ("no_text", _ID + r": no zh text and no recording in (?P<dir>\S+/)", "{name}：没有 zh 文本，{dir} 中也没有录音"),
    ("variants_list", _ID + r": expected a list like (?P<eg>- \{.*\})", "{name}：应为列表，例如 {eg}"),
    ("variant_value", _ID + r": expected letters/digits in quotes, like \"12396\"", "{name}：应为加引号的字母或数字，如 \"12396\""),
    ("variant_twice", _ID + r": (?P<v>\S+) is defined twice", "{name}：{v} 重复定义"),
    ("variant_names", _ID + r": expected exactly (?P<names>.+)", "{name}：应恰好包含 {names}"),
    ("manifest", r"not a valid manifest: (?P<rest>.*)", "不是有效的录音清单"),
)
