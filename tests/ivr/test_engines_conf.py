"""Several engines per node in the rendered dialplan: every engine of ``agi.engines`` is listed
for [ivr-answer] to try in turn (default: this engine alone), an entry that is not host:port
never reaches the file, and the loop hands the resume point to the next engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.asterisk_conf import RenderOptions, process_agi_script, render
from ivr.config import ConfigError, load_config
from ivr.core.secret_policy import fresh_secret

REPO = Path(__file__).resolve().parents[2]


def rendered(**environ: str) -> dict[str, str]:
    settings = load_config(REPO / "config", environ=environ).settings
    secrets = {name: fresh_secret() for name in settings.agents}
    return render(settings, RenderOptions(ami_secret=fresh_secret(), agent_secrets=secrets))


def globals_of(files: dict[str, str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in files["extensions_globals.conf"].splitlines() if "=" in line)


def test_by_default_the_dialplan_tries_this_engine_alone() -> None:
    g = globals_of(rendered())
    assert g["IVR_AGI_URL"] == "agi://127.0.0.1:4573/ivr" and g["IVR_ENGINES"] == "1"
    assert not any(name.startswith("IVR_AGI_URL_") for name in g)


def test_every_engine_of_the_node_is_listed_in_the_order_configured() -> None:
    g = globals_of(rendered(IVR_AGI_ENGINES="127.0.0.1:4573,127.0.0.1:4574,10.0.0.7:4573"))
    assert [g["IVR_AGI_URL"], g["IVR_AGI_URL_1"], g["IVR_AGI_URL_2"]] == [
        "agi://127.0.0.1:4573/ivr", "agi://127.0.0.1:4574/ivr", "agi://10.0.0.7:4573/ivr"]
    assert g["IVR_ENGINES"] == "3" and g["IVR_ENGINE_TURN"] == "0"
    assert g["IVR_ENGINE_TURN_S"] == "60"  # each engine takes a minute of calls in turn (docs/cluster.md)
    assert globals_of(rendered(IVR_AGI_ENGINE_TURN_S="0"))["IVR_ENGINE_TURN_S"] == "0"


def test_process_agi_is_one_entry_whatever_the_engines() -> None:
    g = globals_of(rendered(IVR_AGI_ENTRY="process", IVR_AGI_ENGINES="127.0.0.1:4573,127.0.0.1:4574"))
    assert g["IVR_AGI_URL"] == process_agi_script() and g["IVR_ENGINES"] == "1"


@pytest.mark.parametrize("entry", ["127.0.0.1:4574/x,Queue(vip)", "127.0.0.1:4574\n[evil]", "${CALLERID(num)}:4573"])
def test_an_engine_that_is_not_host_and_port_is_refused_before_anything_is_written(entry: str) -> None:
    with pytest.raises(ConfigError):
        rendered(IVR_AGI_ENGINES=f"127.0.0.1:4573,{entry}")


def test_the_loop_passes_only_the_engines_resume_point_and_starts_each_call_at_the_next_engine() -> None:
    dialplan = rendered()["extensions.conf"]
    answer = dialplan[dialplan.index("[ivr-answer]"):dialplan.index("[ivr-route]")]
    assert "AGI(${IVR_ENGINE_URL},${EXTEN},${IVR_ENV_FILE},${IVR_RESUME})" in answer
    assert "Set(GLOBAL(IVR_ENGINE_TURN)=$[${IVR_ENGINE_FIRST} + 1])" in answer  # the next call starts one further
    # ... or, in turns, the engine whose turn it is (the whole node's calls for IVR_ENGINE_TURN_S seconds)
    turns = "ExecIf($[${IVR_ENGINE_TURN_S} > 0]?Set(IVR_ENGINE_FIRST=$[TRUNC(${EPOCH} / ${IVR_ENGINE_TURN_S}) % ${IVR_ENGINES}]))"
    assert answer.index("Set(IVR_ENGINE_FIRST=$[${IVR_ENGINE_TURN} % ${IVR_ENGINES}])") < answer.index(turns) < answer.index("n(engine)")
    # the whole loop under one limit: set before the first engine, cleared only after the last
    assert answer.index("TIMEOUT(absolute)=${IVR_ENGINE_TIMEOUT}") < answer.index("n(engine)")
    assert answer.index("GotoIf($[${IVR_ENGINE_TRIED} < ${IVR_ENGINES}]?engine)") < answer.index("TIMEOUT(absolute)=0")
    # an engine finished only when it set IVR_ROUTE: otherwise the next one, or the general queue
    assert 'GotoIf($["${IVR_ROUTE}" != ""]?routed)' in answer
    assert "Goto(ivr-route,${IF($[\"${IVR_ROUTE}\" = \"\"]?fallback:${IVR_ROUTE})},1)" in answer
