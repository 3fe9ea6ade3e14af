"""The committed prompts/manifest.json must describe the committed prompts/catalog.yaml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ivr.prompts.build import build_prompts
from ivr.prompts.catalog import load_catalog

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"

REQUIRED = """welcome_12345 welcome_12333 main_menu hrss_menu sample_menu_l1 sample_menu_l2 invalid_key
no_input transfer_notice queue_notice enter_id_number you_entered goodbye closed_notice emergency_notice
out_of_scope_notice callback_offer survey_request survey_thanks progress_query_prompt
subcenter_unavailable""".split()


def committed_manifest() -> dict:
    return json.loads((REPO_PROMPTS / "manifest.json").read_text(encoding="utf-8"))["prompts"]


def test_the_catalog_has_every_prompt_the_flows_need() -> None:
    catalog = load_catalog(REPO_PROMPTS)
    assert [pid for pid in REQUIRED if not catalog.has(pid)] == []
    assert catalog.is_template("merged_notice") and catalog.templates["merged_notice"].placeholders == ("old_number",)
    assert catalog.has(catalog.variant("merged_notice", old_number="12396"))
    assert all(p.text_en for p in catalog.prompts.values() if p.source == "tts")


def test_the_committed_manifest_matches_the_committed_catalog() -> None:
    catalog = load_catalog(REPO_PROMPTS)
    manifest = committed_manifest()
    hint = "prompts/manifest.json is stale: run `ivr prompts build` and commit it"
    assert sorted(catalog.stale) == [], hint
    assert set(manifest) == set(catalog.prompts), hint
    for pid, prompt in catalog.prompts.items():
        assert manifest[pid]["source"] == prompt.source
        assert prompt.duration == manifest[pid]["duration"] > 0


def test_a_fresh_build_of_the_committed_catalog_gives_the_committed_durations(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    shutil.copytree(REPO_PROMPTS, folder, ignore=shutil.ignore_patterns("build"))

    report = build_prompts(folder, tmp_path / "build")

    expected = {pid: e["duration"] for pid, e in committed_manifest().items()}
    assert report.durations == pytest.approx(expected, abs=0.05)
