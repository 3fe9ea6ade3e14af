"""Typed, layered configuration: built-in defaults → ``config/*.yaml`` → environment.

Merged once at start and passed down as frozen objects; business code never reads
``os.environ``. Every file error names file, line and column (see :mod:`ivr.core.yamlsource`).
Flows live in ``config/flows/`` and are compiled by :mod:`ivr.flows`, not here.

Secrets never live in ``config/``: the AMI secret comes from ``IVR_AMI_SECRET``, an agent
phone's SIP password from ``IVR_AGENT_SECRET_<AGENT>``, the key of caller digests from
``IVR_CALLER_KEY`` (the test bed generates its own).

A package with this facade: the engine's sections in :mod:`ivr.config.sections`, the aggregate
in :mod:`ivr.config.settings`, the loader in :mod:`ivr.config.load`, secrets from the environment
in :mod:`ivr.config.secrets`; hotline sections are owned by their features (``queues``,
``transfer``, ``tickets.settings``, ``tracking.settings``, ``ivr.numbers.model``) and re-exported
here so that every ``from ivr.config import …`` keeps working.
"""

from __future__ import annotations

from ivr.config.load import LIST_FIELDS, ConfigError, LoadedConfig, load_config
from ivr.config.secrets import (
    CALLER_KEY_VARIABLE,
    MIN_CALLER_KEY,
    agent_secret,
    audit_log_path,
    caller_key,
    require_caller_key,
    state_dir,
    turn_secret,
    turn_secret_problem,
    webhook_secret,
)
from ivr.config.sections import AgiSettings, AmiSettings, RedisSettings, SipSettings, WebSettings
from ivr.config.settings import ENGINE_MODELS, ENGINE_SECTIONS, Settings
from ivr.core.strict import NAME, NUMBER
from ivr.numbers.model import Compliance, NumberEntry, NumberPlan
from tickets.settings import PushSettings, RequestTypeName, TicketSettings, Webhook, webhook_secret_variable
from tracking.settings import TrackingSettings

__all__ = [
    "CALLER_KEY_VARIABLE", "ENGINE_MODELS", "ENGINE_SECTIONS", "LIST_FIELDS", "MIN_CALLER_KEY", "NAME", "NUMBER",
    "AgiSettings", "AmiSettings", "Compliance", "ConfigError", "LoadedConfig", "NumberEntry", "NumberPlan",
    "PushSettings", "RedisSettings", "RequestTypeName", "Settings", "SipSettings", "TicketSettings",
    "TrackingSettings", "WebSettings", "Webhook", "agent_secret", "audit_log_path", "caller_key", "load_config",
    "require_caller_key", "state_dir", "turn_secret", "turn_secret_problem", "webhook_secret", "webhook_secret_variable",
]
