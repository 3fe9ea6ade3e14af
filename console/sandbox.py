"""A console draft's check, run in a child process with CPU-time and address-space limits.

The console lives in the engine's process, and FastAGI answers calls on the same event loop.
A draft is input from a supervisor's browser: whatever its check costs (a YAML bomb, a huge
flow), that cost must land in a process of its own that the kernel stops at the limits, never
in the engine's memory or on its CPU. At most ``CONCURRENT`` children run at once; more checks
wait their turn. The parent hands the child the live prompt catalog (pickled: parent to child
only) and reads back the report as JSON. The child's side is :mod:`console.sandbox_child`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
import json
import os
import pickle
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.check_report import CheckReport, FlowTiming

if TYPE_CHECKING:
    from ivr.prompts.catalog import PromptCatalog


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 20  # the whole config checks in well under 2 s of CPU
    address_space: int = 1 << 30  # bytes: the interpreter, pydantic and a full config check need ~250 MiB


WALL_SECONDS = 60.0  # a child blocked on something else is killed too
CONCURRENT = 2
NICE = 15  # the child's scheduling priority, below the engine's
MAX_DRAFT_BYTES = 256 * 1024  # the largest file in config/ is ~20 KiB


def refusal(path: Path, reason: str) -> CheckReport:
    return CheckReport(problems=[f"{path}:1:1: {reason}"])


async def check_in_child(config_dir: Path, rel: str, text: str, catalog: "PromptCatalog",
                         slots: asyncio.Semaphore, limits: Limits = Limits()) -> CheckReport:
    """``ivr check`` of ``config_dir`` with ``text`` as ``rel``, in a child process held to
    ``limits`` (``slots``: how many may run at once, see ``CONCURRENT``)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DRAFT_BYTES:
        return refusal(config_dir / rel, f"草稿 {size} 字节，超过上限 {MAX_DRAFT_BYTES} 字节：已拒绝")
    payload = pickle.dumps((limits, str(config_dir), rel, text, catalog))
    async with slots:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console.sandbox_child", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(payload), WALL_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return refusal(config_dir / rel, f"检查超过 {WALL_SECONDS:g} 秒未完成：草稿已拒绝")
    if proc.returncode != 0:
        return refusal(config_dir / rel, f"检查超出资源上限（CPU {limits.cpu_seconds} 秒、内存 "
                                         f"{limits.address_space >> 20} MiB）或失败（退出码 {proc.returncode}）：草稿已拒绝")
    return from_json(json.loads(out))


def to_json(report: CheckReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def from_json(data: dict[str, Any]) -> CheckReport:
    return CheckReport(**{**data, "timings": [FlowTiming(**t) for t in data["timings"]],
                          "slowest": [tuple(s) for s in data["slowest"]]})


def limit(limits: Limits) -> None:
    """Apply this process's limits: past them the kernel stops it (SIGXCPU, MemoryError); and
    yield the CPU to the engine whenever both want it (the check can wait, a caller cannot)."""
    os.nice(NICE)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))

