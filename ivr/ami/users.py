"""Clients for the narrow AMI users (seat control, reload, transfer): each may write one class of
actions and reads no events, so a leaked secret can do little (asterisk_conf's manager.conf).

One factory for the CLI, the console and the transfer adapter; each passes the exception its
caller understands (the CLI's UsageError, TransferError) for a secret that is not set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ivr.ami.client import AmiClient

if TYPE_CHECKING:
    from pydantic import SecretStr

    from ivr.config import Settings


def manager_client(settings: "Settings", username: str, secret: "SecretStr | None", variable: str, *,
                   error: Callable[[str], Exception], at: tuple[str, int] | None = None) -> AmiClient:
    """An AMI client (not yet connected) as one of the narrow manager users, reading no events;
    ``error`` (a message naming ``variable``) is raised when its secret is not set; ``at``:
    another node's AMI (host, port) instead of this node's."""
    if secret is None:
        raise error(f"no secret for the AMI user {username!r}: set {variable} (the one Asterisk's manager.conf has)")
    host, port = at or (settings.ami.host, settings.ami.port)
    return AmiClient(host, port, username, secret.get_secret_value(), events="off")
