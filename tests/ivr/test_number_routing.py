"""The number plan's routing rules on their own: they need the settings only, not compiled flows
(issue 18 moved them from the flow set into ivr.numbers)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ivr.config import Settings, load_config
from ivr.core.route import GENERAL_QUEUE, QueueRoute, TransferRoute
from ivr.numbers.routing import MERGED_NOTICE, entry_for, notice_for

REPO = Path(__file__).resolve().parents[2]
FLOWS = {"main": "main flow", "sample": "sample flow", "hrss": "hrss flow"}  # any value: routing only picks by name


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_config(REPO / "config", environ={}).settings


class Catalog:
    """Records which variant was asked for; has a notice for every old number but 12300."""

    def variant(self, template_id: str, **params: Any) -> str:
        if params.get("old_number") == "12300":
            raise KeyError(template_id)
        return f"{template_id}__{params['old_number']}"


def test_a_number_with_a_flow_runs_it_and_an_unknown_number_gets_the_main_flow(settings: Settings) -> None:
    assert entry_for(settings, FLOWS, "12345") == "main flow"
    assert entry_for(settings, FLOWS, "12333") == "hrss flow"  # dual, with a flow of its own
    assert entry_for(settings, FLOWS, "99999") == "main flow"
    assert entry_for(settings, FLOWS, "12396") == "main flow"  # merged without a flow


def test_a_subcenter_number_dials_its_trunk_and_a_dual_one_queues_for_its_department(settings: Settings) -> None:
    assert entry_for(settings, FLOWS, "12366") == TransferRoute("tax", "12366", 20, GENERAL_QUEUE)
    assert entry_for(settings, FLOWS, "12348") == QueueRoute("expert-legal")
    assert entry_for(settings, FLOWS, "12369") == QueueRoute(GENERAL_QUEUE)


def test_without_a_main_flow_everything_else_goes_to_the_general_queue(settings: Settings) -> None:
    no_main = settings.model_copy(update={"numbers": {n: e for n, e in settings.numbers.items() if e.mode != "main"}})
    assert entry_for(no_main, FLOWS, "99999") == QueueRoute(GENERAL_QUEUE)
    assert entry_for(no_main, FLOWS, "12396") == QueueRoute(GENERAL_QUEUE)


def test_a_merged_number_plays_its_notice_until_its_last_day(settings: Settings) -> None:
    last = settings.numbers["12396"].announce_until
    assert last is not None
    assert notice_for(settings, Catalog(), "12396", last) == f"{MERGED_NOTICE}__12396"
    assert notice_for(settings, Catalog(), "12396", date.fromordinal(last.toordinal() + 1)) is None
    assert notice_for(settings, Catalog(), "12345", last) is None  # not merged
    with pytest.raises(KeyError):  # no recording: ivr check refuses such a plan before a call gets here
        notice_for(settings, Catalog(), "12300", last)
