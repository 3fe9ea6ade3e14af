"""Installing and revoking a web-phone seat's per-sign-in SIP password in Asterisk, over AMI
(issue 23; the AstDB record: ivr/core/phone_auth.py, why this way: docs/console.md).

DBPut is in AMI's ``system`` write class (main/db.c) and Asterisk has no narrower one, so this
uses the reload user (``ami.admin_username``, IVR_AMI_ADMIN_SECRET), which already has exactly
``system`` and nothing else: a user of its own would hold the same rights under a second secret.
Revoking writes a password nobody was given rather than deleting the record: a missing auth
object is an internal error to PJSIP (logged each time, a 500 to a stale phone), a wrong password
a plain 401."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ivr.ami.client import AmiClient
from ivr.ami.users import manager_client
from ivr.core.phone_auth import AUTH_FAMILY, auth_id, auth_value, new_password

if TYPE_CHECKING:
    from ivr.config import Settings


def phone_auth_client(settings: "Settings", error: Callable[[str], Exception]) -> AmiClient:
    """An AMI client (not connected) that may write AstDB: the reload user, reading no events."""
    return manager_client(settings, settings.ami.admin_username, settings.ami.admin_secret, "IVR_AMI_ADMIN_SECRET",
                          error=error)


async def install(client: AmiClient, seat: str, password: str) -> None:
    """``password`` is the seat's from the next challenge on (PJSIP reads AstDB each time)."""
    await client.action({"Action": "DBPut", "Family": AUTH_FAMILY, "Key": auth_id(seat),
                         "Val": auth_value(seat, password)})


async def issue(client: AmiClient, seat: str) -> str:
    """A fresh password installed for ``seat``; any earlier one no longer authenticates."""
    password = new_password()
    await install(client, seat, password)
    return password


async def revoke(client: AmiClient, seat: str) -> None:
    """No password anyone holds registers ``seat`` any more (a fresh one, given to no one)."""
    await install(client, seat, new_password())
