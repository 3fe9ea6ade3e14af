"""Clients for the narrow AMI users (seat control, reload, transfer): each may write one class of
actions and reads no events, so a leaked secret can do little (asterisk_conf's manager.conf).

One factory for the CLI, the console and the transfer and supervision adapters; each passes the
exception its caller understands (the CLI's UsageError, TransferError, SupervisionError) for a
secret that is not set, and :func:`narrow_session` turns Asterisk's refusal into it too.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, AsyncIterator, Callable

from ivr.ami.client import AmiClient, AmiError

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


@contextlib.asynccontextmanager
async def narrow_session(ami: AmiClient | None, make: Callable[[], AmiClient], error: Callable[[str], Exception],
                         refused: str) -> AsyncIterator[AmiClient]:
    """``ami`` when given (left open), else a client ``make()`` returns, connected here and closed
    after the block. Asterisk refusing (AmiError) or not answering (TimeoutError) within the block
    becomes ``error`` (``refused``: what the message says first)."""
    client = ami
    try:
        if client is None:
            client = make()
            await client.connect()
        yield client
    except AmiError as exc:
        raise error(f"{refused}: {exc}") from None
    except TimeoutError:
        raise error("Asterisk did not answer") from None
    finally:
        if ami is None and client is not None:
            client.close()
