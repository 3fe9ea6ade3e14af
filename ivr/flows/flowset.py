"""The whole ``config/`` compiled into one immutable :class:`FlowSet`.

A FlowSet is settings + every flow + the prompt catalog + the holiday calendar, checked
together (a flow may name a queue, a prompt, another flow) and stamped with a version id.
Compiling and live reloading are :mod:`ivr.hot_reload`'s (they load ivr.config, which sits
above the flows); which flow a dialed number runs is the number plan's
(:mod:`ivr.numbers.routing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from ivr.core.calendar import HolidayCalendar
from ivr.core.route import Route
from ivr.core.yamlsource import SourceError
from ivr.flows.compiler import Flow
from ivr.flows.lint import FlowLint
from ivr.numbers.routing import entry_for, notice_for

if TYPE_CHECKING:  # type-only: ivr.config sits above the flows (issue 18)
    from ivr.config import Settings
    from ivr.prompts.catalog import PromptCatalog


@dataclass(frozen=True)
class FlowSet:
    version: str  # content hash + compile time, e.g. "3f2a9c1b7e4d-20261122T160000Z"
    settings: Settings
    flows: Mapping[str, Flow]
    catalog: "PromptCatalog"
    calendar: HolidayCalendar
    lint: Mapping[str, FlowLint]
    estimated: Mapping[str, float]  # prompt id → estimated seconds (no duration in the catalog)
    lint_problems: tuple[SourceError, ...] = ()  # over budget, human key not reaching a human
    warnings: tuple[str, ...] = ()
    # dialed number → worst case to a human (not exempt)
    number_seconds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def notice(self, dialed: str, today: date) -> str | None:
        """The prompt a merged number's caller hears first (过渡期语音提示): until its
        ``announce_until`` day (always, when none is set), then nothing."""
        return notice_for(self.settings, self.catalog, dialed, today)

    def entry(self, dialed: str) -> Flow | Route:
        """What a call to ``dialed`` runs: its flow, a sub-center transfer, or the 12345 flow."""
        return entry_for(self.settings, self.flows, dialed)
