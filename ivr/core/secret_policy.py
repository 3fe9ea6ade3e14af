"""How strong a secret must be: AMI users' secrets, agents' SIP passwords, webhook signing keys.

A short or repetitive secret is guessed online (AMI and SIP answer every try) or offline from one
signed webhook body. Every secret is refused below 16 characters or with fewer than 8 different
characters; ``secrets.token_urlsafe(18)`` (what :func:`fresh_secret` and the test bed use)
passes but for a chance below 1e-14. Checked where each is used: ``ivr serve``, ``ivr check`` and rendering Asterisk's files.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from typing import Mapping, Protocol

from pydantic import SecretStr

MIN_LENGTH = 16
MIN_DISTINCT = 8


def fresh_secret() -> str:
    """A new secret that passes (24 URL-safe characters, 144 random bits)."""
    return secrets.token_urlsafe(18)


def secret_problem(label: str, value: str) -> str | None:
    """Why ``value`` may not be the secret ``label`` (an environment variable's name), or None."""
    advice = f"(e.g. `openssl rand -base64 18`, or {fresh_secret()})"
    if any(unicodedata.category(ch)[0] in "CZ" for ch in value):
        return f"{label}: a secret may not contain spaces, line breaks or control characters {advice}"
    if ";" in value:
        return f"{label}: a secret may not contain ';' (Asterisk's files read it as a comment) {advice}"
    if len(value) < MIN_LENGTH:
        return f"{label} is too weak: {len(value)} characters, at least {MIN_LENGTH} needed {advice}"
    if len(set(value)) < MIN_DISTINCT:
        return f"{label} is too weak: only {len(set(value))} different characters, at least {MIN_DISTINCT} needed {advice}"
    return None


def secret_problems(named: Mapping[str, str | None]) -> list[str]:
    """:func:`secret_problem` of each set secret, by its variable's name (unset ones are skipped)."""
    return [p for label, value in named.items() if value and (p := secret_problem(label, value))]


def agent_secret_variable(agent: str) -> str:
    """Where an agent phone's SIP password comes from: ``IVR_AGENT_SECRET_<AGENT>``."""
    return "IVR_AGENT_SECRET_" + agent.upper().replace("-", "_")


def agent_secret(agent: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An agent phone's SIP password, from ``IVR_AGENT_SECRET_<AGENT>`` (dashes as underscores)."""
    environ = os.environ if environ is None else environ
    return environ.get(agent_secret_variable(agent))


def supervisor_secret_variable(supervisor: str) -> str:
    """Where a supervisor phone's SIP password comes from: ``IVR_SUPERVISOR_SECRET_<NAME>``."""
    return "IVR_SUPERVISOR_SECRET_" + supervisor.upper().replace("-", "_")


class AmiSecrets(Protocol):
    """The AMI users' secrets (``ivr.config.AmiSettings``), described here so that the core
    needs no import of the settings above it."""

    @property
    def secret(self) -> SecretStr | None: ...
    @property
    def seats_secret(self) -> SecretStr | None: ...
    @property
    def admin_secret(self) -> SecretStr | None: ...
    @property
    def transfer_secret(self) -> SecretStr | None: ...
    @property
    def supervise_secret(self) -> SecretStr | None: ...


class Deployment(Protocol):
    """What :func:`deployment_secret_problems` reads of ``ivr.config.Settings``."""

    @property
    def ami(self) -> AmiSecrets: ...
    @property
    def agents(self) -> Mapping[str, object]: ...


def deployment_secret_problems(settings: Deployment, environ: Mapping[str, str] | None = None) -> list[str]:
    """Weak secrets among those this deployment has set: the AMI users' and the agents' SIP
    passwords (``ivr serve`` and ``ivr check`` refuse them; webhook keys: tickets.push)."""
    ami = settings.ami
    named = {variable: secret.get_secret_value() if secret else None for variable, secret in (
        ("IVR_AMI_SECRET", ami.secret), ("IVR_AMI_SEATS_SECRET", ami.seats_secret),
        ("IVR_AMI_ADMIN_SECRET", ami.admin_secret), ("IVR_AMI_TRANSFER_SECRET", ami.transfer_secret),
        ("IVR_AMI_SUPERVISE_SECRET", ami.supervise_secret))}
    named.update({agent_secret_variable(name): agent_secret(name, environ) for name in settings.agents})
    return secret_problems(named)
