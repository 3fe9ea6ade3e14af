"""Test helpers: compile one flow text, and a fake channel with scripted answers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from ivr.core.channel import CallerHungUp, CallInfo, InMemoryVariables
from ivr.flows.flowset import FlowSet
from ivr.hot_reload import compile_config
from ivr.prompts.catalog import Prompt, PromptCatalog, Template, variant_id
from ivr.core.yamlsource import SourceErrors

REPO = Path(__file__).resolve().parents[3]


def _department_prompts() -> list[str]:
    """The department prompts of the shipped catalog (config/flows/main.yaml's query names them)."""
    prompts = yaml.safe_load((REPO / "prompts" / "catalog.yaml").read_text(encoding="utf-8"))["prompts"]
    return [pid for pid in prompts if pid.startswith("department_")]


# id → (Mandarin text, seconds); None = no duration yet, so the lint must estimate.
PROMPTS: dict[str, tuple[str, float | None]] = {
    "welcome_12345": ("您好，欢迎致电12345政务服务便民热线。", 4.0),
    "welcome_12333": ("您好，这里是12333人社服务热线。", 3.0),
    "elderly_greeting": ("您好，正在为您优先接通人工服务，请稍候。", 3.0),
    "main_menu": ("人社业务请按1，人工服务请按0或直接等待。", 4.0),
    "hrss_menu": ("专家咨询请按1，综合服务请按0。", 3.0),
    "sample_menu_l1": ("服务查询请按1，身份证查询请按2，紧急求助请按9，人工服务请按0。", 6.0),
    "sample_menu_l2": ("人社专家请按1，纳税服务请按2，人工服务请按0，返回请按星号。", 5.0),
    "invalid_key": ("您的输入有误。", 1.5),
    "no_input": ("没有收到您的输入。", 1.5),
    "transfer_notice": ("正在为您转接，请稍候。", 2.0),
    "queue_notice": ("正在为您接通人工服务，请稍候。", 2.5),
    "enter_id_number": ("请输入您的身份证号码，以井号键结束。", 3.5),
    "you_entered": ("您输入的是", 1.0),
    "goodbye": ("感谢您的来电，再见。", 2.0),
    "closed_notice": ("现在是非工作时间。", 2.0),
    "emergency_notice": ("如遇紧急情况，请拨打110、119、120或122。", 4.0),
    **{f"out_of_scope_{m}": (f"您反映的事项属于{t}事项，本热线不予受理。", 3.0)
       for m, t in (("litigation", "诉讼"), ("arbitration", "仲裁"), ("petition", "信访"), ("reconsideration", "行政复议"))},
    "transitional_notice": ("该号码已并入12345热线，正在为您转接。", None),  # no duration: estimated
    # the progress query (ticket_query) and the numbers and dates it says
    "progress_query_prompt": ("请输入您的工单编号，以井号键结束。", 3.0),
    "progress_after_menu": ("查询其他工单请按1，人工服务请按0。", 3.0),
    "ticket_number_is": ("您查询的工单编号是：", 2.0),
    "ticket_status_accepted": ("该工单已受理，正在办理。", 2.5),
    "ticket_status_dispatched": ("该工单已派发至承办单位办理。", 3.0),
    "ticket_status_handling": ("承办单位正在办理该工单。", 2.5),
    "ticket_status_replied": ("承办单位已答复该工单。", 2.5),
    "ticket_status_closed": ("该工单已办结。", 1.5),
    "ticket_status_other": ("该工单正在处理中。", 2.0),
    "ticket_status_returned": ("该工单已被承办单位退回，正在重新派发。", 4.0),
    "ticket_reply_sent": ("办理结果已向您答复。", 2.0),
    "open_ticket_offer": ("您有一件工单正在办理，查询进度请按4。", 3.5),
    **{pid: ("承办单位为某单位。", 2.5) for pid in _department_prompts()},
    "ticket_due": ("办理期限为：", 1.5),
    "ticket_due_provisional": ("该期限可能随节假日安排调整。", 3.5),
    "ticket_not_found": ("未查到该工单，请核对后重新输入。", 4.0),
    "ticket_not_found_end": ("未查到该工单。", 2.0),
    "ticket_query_unavailable": ("抱歉，工单查询服务暂时无法使用。", 4.0),
    **{f"digit_{d}": (t, 0.5) for d, t in enumerate("零幺二三四五六七八九")},
    "number_1": ("一", 0.5),
    "number_10": ("十", 0.5),
    "number_liang": ("两", 0.75),
    "date_year": ("年", 0.5),
    "date_month": ("月", 0.5),
    "date_day": ("日", 0.5),
    "time_hour": ("点", 0.5),
    "time_minute": ("分", 0.5),
}


def _merged_numbers() -> list[str]:
    """Every merged number of the shipped number plans (each has its transitional notice)."""
    numbers: list[str] = []
    for plan in sorted((REPO / "config" / "plans").glob("*.yaml")):
        entries = yaml.safe_load(plan.read_text(encoding="utf-8"))["numbers"]
        numbers += [n for n, e in entries.items() if e["mode"] == "merged" and n not in numbers]
    return numbers


MERGED = _merged_numbers()


def make_catalog(prompts: dict[str, tuple[str, float | None]] = PROMPTS) -> PromptCatalog:
    """The test prompts, and the merged-number notice template with a variant per merged number."""
    variants = {variant_id("merged_notice", {"old_number": n}): (f"{n}热线已并入12345热线。", 4.0) for n in MERGED}
    template = Template("merged_notice", "{old_number}热线已并入12345热线。", "", ("old_number",), tuple(variants))
    return PromptCatalog({pid: Prompt(pid, text, duration=seconds) for pid, (text, seconds) in {**prompts, **variants}.items()},
                         templates={"merged_notice": template})


NOTICE_FLOW = """
    nodes:
      notice: {type: play, prompts: transitional_notice, next: agent}
      agent: {type: queue, queue: general}
    """


def write_flow(config: Path, text: str, name: str = "t") -> Path:
    path = config / "flows" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def compile_text(config: Path, catalog: PromptCatalog, text: str, **kw) -> FlowSet:  # type: ignore[no-untyped-def]
    write_flow(config, text)
    return compile_config(config, catalog, environ={}, **kw)


def errors_of(config: Path, catalog: PromptCatalog, text: str) -> list[str]:
    """Every reported problem as 'line:col: reason' (file name dropped)."""
    try:
        compile_text(config, catalog, text, strict_lint=True)
    except SourceErrors as exc:
        return [f"{e.location.line}:{e.location.col}: {e.reason}" for e in exc.errors if e.location]
    return []


def call(dialed: str = "12345", caller: str = "13800000000") -> CallInfo:
    return CallInfo(unique_id="1700000000.1", channel="PJSIP/pstn-00000001", dialed=dialed, caller=caller)


class FakeChannel(InMemoryVariables):
    """Answers each input request from ``answers`` ('' = timeout, 'HANGUP' = hang up).

    ``barge`` lists digits pressed during interruptible prompts, in order.
    """

    def __init__(self, answers: list[str] | None = None, barge: list[str] | None = None):
        self.answers = list(answers or [])
        self.barge = list(barge or [])
        self.calls: list[tuple] = []
        super().__init__()

    def _answer(self) -> str:
        answer = self.answers.pop(0) if self.answers else ""
        if answer == "HANGUP":
            raise CallerHungUp()
        return answer

    async def stream(self, sound: str, escape_digits: str = "") -> str:
        self.calls.append(("stream", sound, escape_digits))
        return self.barge.pop(0) if escape_digits and self.barge else ""

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str:
        self.calls.append(("get_data", sound, timeout_ms, max_digits))
        return self._answer()

    async def wait_for_digit(self, timeout_ms: int) -> str:
        return self._answer()

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        self.calls.append(("say_digits", digits))
        return ""

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        self.calls.append(("say_number", number))
        return ""

    async def set_variable(self, name: str, value: str) -> None:
        self.calls.append(("set", name, value))
        await super().set_variable(name, value)

    async def exec(self, application: str, args: str = "") -> str:
        return "0"

    def sounds(self) -> list[str]:
        return [c[1].removeprefix("ivr12345/") for c in self.calls if c[0] in ("stream", "get_data")]
