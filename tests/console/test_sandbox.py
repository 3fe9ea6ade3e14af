"""A console draft's check runs in a child process held to CPU and memory limits (issue 17,
finding 3): past them the draft is refused and nothing of it lands in the engine's process."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from console.sandbox import MAX_DRAFT_BYTES, Limits, check_in_child
from ivr.hot_reload import catalog_loader, default_prompts_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"


def check(text: str, limits: Limits = Limits()) -> list[str]:  # noqa: B008 (Limits is a frozen dataclass)
    catalog = catalog_loader(default_prompts_dir(CONFIG))()
    report = asyncio.run(check_in_child(CONFIG, "flows/main.yaml", text, catalog, asyncio.Semaphore(1), limits))
    return report.problems


def test_the_child_checks_a_good_draft_as_ivr_check_does() -> None:
    assert check((CONFIG / "flows" / "main.yaml").read_text(encoding="utf-8")) == []


def test_a_check_past_its_memory_limit_is_refused() -> None:
    """A draft within the caps that takes memory to check (40 000 values, each located): with
    an address space smaller than that the kernel stops the child, so the limit is applied there."""
    draft = "values: [" + "x, " * 40_000 + "x]\n"
    path = CONFIG / "flows" / "main.yaml"
    assert f"{path}:1:1: unknown key 'values'" in check(draft)  # checked, within the default limits
    [problem] = check(draft, Limits(address_space=16 << 20))
    # where the limit lands depends on what the check has imported by then: MemoryError (exit 1),
    # the kernel's SIGKILL when the stack cannot grow (-9), an abort in malloc (-6), or a failed
    # flush at the interpreter's exit (120); each is a refusal
    refused = re.escape(f"{path}:1:1: 检查超出资源上限（CPU 20 秒、内存 16 MiB）或失败（退出码 ")
    assert re.fullmatch(refused + r"(1|-9|-6|120)）：草稿已拒绝",
                        problem), problem


def test_a_draft_over_the_size_cap_is_refused_unread() -> None:
    problems = check("#" * MAX_DRAFT_BYTES + "\n")
    assert problems == [f"{CONFIG / 'flows' / 'main.yaml'}:1:1: 草稿 {MAX_DRAFT_BYTES + 1} 字节，超过上限 {MAX_DRAFT_BYTES} 字节：已拒绝"]
