"""The ``out_of_scope`` node and its config: compiled and validated with file:line, timed by
the lint from the matter's prompt, and run (the explanation, the call marked)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from flow_helpers import REPO, FakeChannel, call, compile_text, errors_of
from ivr.config import ConfigError, load_config
from ivr.flows.runner import run_call
from testbed.configs import edit_entry

FLOW = """
    nodes:
      told: {type: out_of_scope, matter: petition, next: agent}
      agent: {type: queue, queue: general}
    """


@pytest.fixture
def scoped(bare_config: Path) -> Path:
    shutil.copy(REPO / "config" / "outofscope.yaml", bare_config / "outofscope.yaml")
    return bare_config


def test_the_node_plays_the_matters_explanation_and_marks_the_call(scoped, catalog):
    flows = compile_text(scoped, catalog, FLOW)
    channel = FakeChannel()
    record = asyncio.run(run_call(flows, call(), channel))
    assert channel.sounds() == ["out_of_scope_petition"]
    assert record.variables["out_of_scope"] == "petition"
    assert record.visits[0].outcome == "out of scope: petition"
    assert flows.lint["t"].worst_seconds == 3.0  # the explanation's duration (fixture catalog)


def test_an_unknown_matter_is_refused_at_its_line(scoped, catalog):
    assert errors_of(scoped, catalog, FLOW.replace("matter: petition", "matter: petitoin")) == [
        "2:38: out-of-scope matter 'petitoin' is not defined in config/outofscope.yaml (did you mean 'petition'?)"
    ]


def test_a_matter_whose_prompt_is_not_in_the_catalog_is_refused_at_its_line(scoped, catalog):
    line = edit_entry(scoped / "outofscope.yaml", "arbitration", "out_of_scope_arbitration", "out_of_scope_arbitraton")
    errors = errors_of(scoped, catalog, FLOW)
    assert errors == [f"{line}:{errors[0].split(':')[1]}: out_of_scope arbitration: prompt 'out_of_scope_arbitraton' is not "
                      "in the prompt catalog (did you mean 'out_of_scope_arbitration'?)"]


def test_two_matters_on_one_agent_key_or_a_bad_key_are_refused_with_file_and_line(scoped):
    line = edit_entry(scoped / "outofscope.yaml", "arbitration", '"*82"', '"*81"')
    with pytest.raises(ConfigError, match=rf"outofscope.yaml:{line}:\d+: agent_key \*81 is taken by matter 'litigation'"):
        load_config(scoped, environ={})
    edit_entry(scoped / "outofscope.yaml", "arbitration", '"*81"', '"82"')
    with pytest.raises(ConfigError, match=rf"outofscope.yaml:{line}:\d+: .*agent_key"):
        load_config(scoped, environ={})
