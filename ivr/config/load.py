"""Loading ``config/*.yaml``, the number plan and the ``IVR_*`` environment into
:class:`~ivr.config.settings.Settings`; every error names file, line and column."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from ivr.config.settings import ENGINE_MODELS, ENGINE_SECTIONS, Settings
from ivr.core.conftext import line_breaks
from ivr.core.strict import NAME
from ivr.core.yamlsource import Document, Location, SourceError, SourceErrors, load, pydantic_errors
from ivr.numbers.model import NumberPlan

__all__ = ["LIST_FIELDS", "ConfigError", "LoadedConfig", "load_config"]

LIST_FIELDS = ("pstn_match", "allowed_peers", "engines", "sentinels")  # comma-separated in the environment


@dataclass(frozen=True)
class LoadedConfig:
    """Settings plus where each top-level section came from (for error messages)."""

    settings: Settings
    config_dir: Path
    origins: Mapping[str, str]  # "agi.port" -> "config/engine.yaml:3:9" or "environment IVR_AGI_PORT"

    def origin(self, dotted: str) -> str:
        return self.origins.get(dotted, "built-in default")


class ConfigError(Exception):
    """Start-up must stop: one clear line (or a few) saying what and where."""


def load_config(config_dir: str | Path = "config", environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read every ``*.yaml`` directly in ``config_dir`` (not ``flows/``) and the environment."""
    environ = os.environ if environ is None else environ
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(f"config directory {config_dir} does not exist")
    merged: dict[str, Any] = {}
    owner: dict[str, Document] = {}
    origins: dict[str, str] = {}
    errors: list[SourceError] = []
    for path in sorted(config_dir.glob("*.yaml")):
        try:
            doc = load(path)
        except SourceError as exc:
            errors.append(exc)
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            errors.append(SourceError(Location(str(path), 1, 1), "top level must be a mapping"))
            continue
        for key, value in doc.data.items():
            if key in merged:
                errors.append(doc.error((key,), f"{key!r} is already defined in {owner[key].file}", at_key=True))
                continue
            if key not in Settings.model_fields:
                errors.append(doc.error((key,), f"unknown key {key!r}", at_key=True))
                continue
            merged[key] = value
            owner[key] = doc
            for path_, loc in doc.value_at.items():
                if path_ and path_[0] == key:
                    origins[".".join(str(p) for p in path_)] = str(loc)
    if errors:
        raise ConfigError(str(SourceErrors(errors)))

    number_docs: dict[str, Document] = {}  # where each number of the plan was written
    plan = environ.get("IVR_PLAN") or merged.get("plan")
    if plan is not None:
        if environ.get("IVR_PLAN"):
            merged["plan"], origins["plan"] = plan, "environment IVR_PLAN"
        plan_doc = _load_plan(config_dir, str(plan), owner.get("plan"), origins)
        local = merged.get("numbers") or {}
        if not isinstance(local, dict):
            raise ConfigError(f"{owner['numbers'].where(('numbers',))}: numbers must be a mapping")
        number_docs = {number: plan_doc for number in plan_doc.data["numbers"] if number not in local}
        merged["numbers"] = {**plan_doc.data["numbers"], **local}
        for path_, loc in plan_doc.value_at.items():
            if len(path_) > 1 and path_[0] == "numbers" and path_[1] in number_docs:
                origins[".".join(str(p) for p in path_)] = str(loc)

    for var, value in sorted(environ.items()):
        section, _, field_ = var.removeprefix("IVR_").lower().partition("_")
        if not var.startswith("IVR_") or section not in ENGINE_SECTIONS:
            continue  # not a setting (IVR_CONFIG, IVR_STATE_DIR, IVR_AGENT_SECRET_*, ...)
        if field_ not in ENGINE_MODELS[section].model_fields:
            known = ", ".join(f"IVR_{section.upper()}_{f.upper()}" for f in ENGINE_MODELS[section].model_fields)
            raise ConfigError(f"environment {var}: unknown setting (known: {known})")
        section_data = merged.setdefault(section, {})
        if not isinstance(section_data, dict):
            raise ConfigError(f"{owner[section].where((section,))}: {section} must be a mapping")
        section_data[field_] = value.split(",") if field_ in LIST_FIELDS else value
        origins[f"{section}.{field_}"] = f"environment {var}"

    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, owner, origins)) from None
    # any text, rendered into Asterisk's files today or not, is one line (ivr/core/conftext.py)
    problems = [f"{origins.get(path_, 'config')}: {path_}: {why} is not allowed" for path_, why in line_breaks(settings)]
    for path_, reason in settings.reference_problems():
        source = owner.get(str(path_[0]))
        if path_[0] == "numbers" and len(path_) > 1 and str(path_[1]) in number_docs:
            source = number_docs[str(path_[1])]
        where = source.where(path_) if source else origins.get(".".join(map(str, path_)), "config")
        problems.append(f"{where}: {reason}")
    if problems:
        raise ConfigError("\n".join(problems))
    return LoadedConfig(settings, config_dir, origins)


def _load_plan(config_dir: Path, name: str, named_in: Document | None, origins: dict[str, str]) -> Document:
    """``config/plans/<name>.yaml``, validated on its own so that errors name its lines."""
    path = config_dir / "plans" / f"{name}.yaml"
    if not re.fullmatch(NAME, name) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in (config_dir / "plans").glob("*.yaml"))) or "none"
        where = named_in.where(("plan",)) if named_in else origins.get("plan", "config")
        raise ConfigError(f"{where}: number plan {name!r} not found in {config_dir / 'plans'} (there: {known})")
    try:
        doc = load(path)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    try:
        NumberPlan.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(str(pydantic_errors(doc, exc))) from None
    return doc


def _explain(exc: ValidationError, owner: dict[str, Document], origins: dict[str, str]) -> str:
    lines: list[str] = []
    for err in exc.errors():
        loc = err["loc"]
        if loc and loc[0] in owner:
            doc = owner[loc[0]]
            lines.extend(str(e) for e in pydantic_errors(doc, _OneError(dict(err))).errors)
            continue
        dotted = ".".join(str(p) for p in loc)
        where = origins.get(dotted, "config")
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {dotted + ': ' if dotted else ''}{msg}")
    return "\n".join(lines)


class _OneError:
    def __init__(self, err: dict[str, Any]):
        self._err = dict(err, msg=err["msg"].removeprefix("Value error, "))

    def errors(self) -> list[dict[str, Any]]:
        return [self._err]
