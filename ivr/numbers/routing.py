"""The number plan's routing rules: what a dialed number runs, and what its caller hears first.

Pure functions of the settings (no flows compiled here, no I/O): :class:`ivr.flows.flowset.FlowSet`
answers calls with them, and ``ivr check`` (:mod:`ivr.hot_reload`) holds every number to
:data:`NUMBER_BUDGET` with the same rules, so the checked path is the path a caller takes.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Mapping, Protocol, TypeVar

from ivr.core.route import GENERAL_QUEUE, QueueRoute, Route, TransferRoute

if TYPE_CHECKING:  # type-only: the settings aggregate sits above the number plan
    from ivr.config import Settings

MERGED_NOTICE = "merged_notice"  # the transitional notice template (prompts/catalog.yaml), per old number

NUMBER_BUDGET = 15.0
"""Seconds from answer to a human that every dialable number is held to (the national
"answered within 15 s" benchmark), unless its flow says less or its plan entry says why not."""

F = TypeVar("F")  # a compiled flow: the plan only picks one by name, it never looks inside


class NoticeCatalog(Protocol):
    """The one thing routing asks of the prompt catalog: a template's variant (KeyError if none)."""

    def variant(self, template_id: str, **params: Any) -> str: ...


def notice_for(settings: Settings, catalog: NoticeCatalog, dialed: str, today: date) -> str | None:
    """A merged number's transitional notice on ``today`` (see :meth:`FlowSet.notice`)."""
    entry = settings.numbers.get(dialed)
    if entry is None or entry.mode != "merged" or (entry.announce_until and today > entry.announce_until):
        return None
    return catalog.variant(MERGED_NOTICE, old_number=dialed)


def entry_for(settings: Settings, flows: Mapping[str, F], dialed: str) -> F | Route:
    """What a call to ``dialed`` runs: its flow, a sub-center transfer, or the 12345 flow.

    An unknown number (or a merged one without a flow of its own) gets the main number's
    flow; with no main flow at all, the 7×24 general queue.
    """
    entry = settings.numbers.get(dialed)
    if entry and entry.flow:
        return flows[entry.flow]
    if entry and entry.mode == "subcenter" and entry.subcenter:
        sc = settings.subcenters[entry.subcenter]
        return TransferRoute(entry.subcenter, sc.number, sc.ring_timeout, sc.fallback_queue)
    if entry and entry.mode == "dual":  # no flow of its own: straight to its department's seats
        return QueueRoute(entry.skill or GENERAL_QUEUE)
    for number in settings.numbers.values():
        if number.mode == "main" and number.flow:
            return flows[number.flow]
    return QueueRoute(GENERAL_QUEUE)
