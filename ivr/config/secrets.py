"""Secrets and local paths, from the environment only (never from ``config/``): the state
directory, the audit log, agents' SIP passwords, webhook keys, the caller-digest key and the
TURN server's shared secret (config/ names where it is, never holds it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ivr.config.load import ConfigError
from ivr.core.secret_policy import agent_secret, secret_problem
from queues.model import TurnSecret
from tickets.settings import webhook_secret_variable

__all__ = ["CALLER_KEY_VARIABLE", "MIN_CALLER_KEY", "agent_secret", "audit_log_path", "caller_key", "require_caller_key",
           "state_dir", "turn_secret", "turn_secret_problem", "webhook_secret", "webhook_secret_variable"]


def state_dir() -> Path:
    """Local state and caches (test bed rootfs, record spool); ``IVR_STATE_DIR`` overrides."""
    base = os.environ.get("IVR_STATE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ivr12345"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def audit_log_path(environ: Mapping[str, str] | None = None) -> Path:
    """The audit log (tickets/audit.py) the CLI and the console share: ``IVR_AUDIT_LOG``, else
    ``audit/unmasked.jsonl`` in the state directory."""
    environ = os.environ if environ is None else environ
    configured = environ.get("IVR_AUDIT_LOG")
    return Path(configured) if configured else state_dir() / "audit" / "unmasked.jsonl"


def webhook_secret(endpoint: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A department webhook's HMAC key (never kept in config/)."""
    environ = os.environ if environ is None else environ
    return environ.get(webhook_secret_variable(endpoint))


CALLER_KEY_VARIABLE = "IVR_CALLER_KEY"
MIN_CALLER_KEY = 16  # characters: the key, not the phone number, is what a dump's reader must guess


def caller_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key of caller digests in Redis (:func:`ivr.store.keyspace.caller_digest`), from
    ``IVR_CALLER_KEY``; the same on every engine sharing one Redis. None when unset."""
    environ = os.environ if environ is None else environ
    value = environ.get(CALLER_KEY_VARIABLE, "")
    if not value:
        return None
    if len(value) < MIN_CALLER_KEY:
        raise ConfigError(f"{CALLER_KEY_VARIABLE} is too short: use at least {MIN_CALLER_KEY} random characters "
                          "(e.g. `openssl rand -base64 32`)")
    return value.encode()


def require_caller_key(environ: Mapping[str, str] | None = None) -> bytes:
    """:func:`caller_key`, or a ConfigError saying how to set it."""
    key = caller_key(environ)
    if key is None:
        raise ConfigError(f"missing caller key: set {CALLER_KEY_VARIABLE} (at least {MIN_CALLER_KEY} random "
                          "characters, the same on every engine sharing Redis; never kept in config/)")
    return key


def turn_secret(source: TurnSecret, environ: Mapping[str, str] | None = None) -> str:
    """The TURN server's shared secret from where ``phones.web.turn_secret`` says (a file's first
    line); ConfigError saying why when it is unset, unreadable, empty or weak."""
    environ = os.environ if environ is None else environ
    label = str(source.env or source.file)  # a variable's name or an absolute path: no spaces (TurnSecret)
    if source.env is not None:
        value = environ.get(source.env, "")
    else:
        try:
            value = Path(str(source.file)).read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label} is unreadable (phones.web.turn_secret): {exc}") from None
    if not value:
        raise ConfigError(f"{label} is not set (phones.web.turn_secret: empty or unset)")
    if problem := secret_problem(label, value):
        raise ConfigError(problem)
    return value


def turn_secret_problem(source: TurnSecret | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the configured TURN secret cannot be used (``ivr check``: before an agent signs in), or None."""
    if source is None:
        return None
    try:
        turn_secret(source, environ)
    except ConfigError as exc:
        return str(exc)
    return None
