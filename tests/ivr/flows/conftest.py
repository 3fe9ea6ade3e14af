"""Shared fixtures: a prompt catalog built in code, and a config directory per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flow_helpers import make_catalog
from ivr.prompts.catalog import PromptCatalog

REPO = Path(__file__).resolve().parents[3]

@pytest.fixture
def catalog() -> PromptCatalog:
    return make_catalog()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config/ that a test may change."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


SETTINGS_FILES = ("engine.yaml", "numbers.yaml", "queues.yaml", "subcenters.yaml")


# the flow under test alone: its number is exempt from the number plan's 15 s (its own budget
# still holds; test_number_compliance.py tests the numbers' budget)
BARE_NUMBERS = 'numbers:\n  "12345": {mode: main, title: t, flow: t, compliance: {exempt: "a unit test flow"}}\n'


@pytest.fixture
def bare_config(tmp_path: Path) -> Path:
    """The shipped settings with no flows except those a test writes (and numbers.yaml's main)."""
    target = tmp_path / "bare"
    (target / "flows").mkdir(parents=True)
    for name in SETTINGS_FILES:
        shutil.copy(REPO / "config" / name, target / name)
    (target / "numbers.yaml").write_text(BARE_NUMBERS, encoding="utf-8")
    return target
