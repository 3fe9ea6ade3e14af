"""The desk page's WebRTC phone (issue 23): the SIP account the console issues to a seat's
signed-in agent, and the one WebSocket address the page's CSP lets it open.

The password is fresh for each sign-in: made when the desk page asks for the account (over POST
with the CSRF token, never cached, never in the page's source) and installed in Asterisk's AstDB,
where PJSIP reads the seat's digest account (ivr/ami/phone_auth.py); the agent's sign-out, or a
new sign-in of the same agent, replaces it with one nobody holds (docs/console.md)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from aiohttp import web

from ivr.ami.client import AmiClient
from ivr.ami.phone_auth import issue, phone_auth_client, revoke
from ivr.ami.users import narrow_session
from ivr.config import ConfigError, Settings, agent_secret, turn_secret
from ivr.core.ice import ice_servers, turn_credentials

# the desk page's connect-src (:func:`connect_src`), which the security headers add to the CSP
CONNECT_SRC = web.RequestKey("connect_src", str)


@dataclass(frozen=True)
class PhoneAccount:
    """What JsSIP needs to register the seat's phone."""

    ws: str
    uri: str
    user: str
    password: str
    display: str

    def to_json(self) -> dict[str, str]:
        return {"ws": self.ws, "uri": self.uri, "user": self.user, "password": self.password,
                "display": self.display}


class NoWebPhone(LookupError):
    """The seat has no web phone."""


class PhoneAuthError(RuntimeError):
    """Asterisk could not be given the seat's password (the reason in English, for the log)."""


def web_phone_url(settings: Settings, agent: str) -> str | None:
    """The WebSocket URL the seat's desk page opens; None when the seat's phone is not the page's."""
    seat = settings.agents.get(agent)
    if seat is None or seat.phone != "web" or settings.phones.web is None:
        return None
    return settings.phones.web.url


def account(settings: Settings, agent: str, password: str) -> PhoneAccount:
    """The seat's SIP account with ``password`` (checked by the config: the seat is a plain name)."""
    url = web_phone_url(settings, agent)
    if url is None:
        raise NoWebPhone("本座席未启用网页话机。")
    domain = url.split("://", 1)[1].split("/", 1)[0]
    return PhoneAccount(ws=url, uri=f"sip:{agent}@{domain}", user=agent, password=password,
                        display=settings.agents[agent].name)


def connect_src(settings: Settings, agent: str) -> str:
    """The CSP ``connect-src`` of seat ``agent``'s desk: the page itself and its one WebSocket."""
    url = web_phone_url(settings, agent)
    return "'self'" + (f" {url}" if url else "")


def _writing_astdb(settings: Settings) -> contextlib.AbstractAsyncContextManager[AmiClient]:
    """An AMI session that may install a seat's password; its failures are PhoneAuthError."""
    return narrow_session(None, lambda: phone_auth_client(settings, PhoneAuthError), PhoneAuthError,
                          "Asterisk refused the phone password")


def behind_proxies(settings: Settings) -> bool:
    """Whether the seats' phones register at the cluster's proxies, which check each seat's digest
    against the keys rendered from its own secret: there a web seat keeps that secret (no
    per-sign-in password yet, docs/console.md)."""
    return settings.cluster is not None and bool(settings.cluster.proxies)


async def issue_account(settings: Settings, agent: str) -> PhoneAccount:
    """The seat's account with a password made now and installed in Asterisk: the one before it
    (another tab's, another sign-in's) stops authenticating at once. Behind proxies: the seat's
    own secret, as its agent would type it into a softphone."""
    if web_phone_url(settings, agent) is None:
        raise NoWebPhone("本座席未启用网页话机。")
    if behind_proxies(settings):
        secret = agent_secret(agent)
        if not secret:
            raise NoWebPhone("网页话机账号未配置，请联系管理员。")
        return account(settings, agent, secret)
    async with _writing_astdb(settings) as client:
        password = await issue(client, agent)
    return account(settings, agent, password)


async def revoke_account(settings: Settings, agent: str | None) -> bool:
    """The seat's password replaced by one given to no one, when ``agent``'s seat has a web phone
    (False: nothing to revoke). A phone still registered keeps its contact until it next
    re-registers, which then fails (docs/console.md)."""
    if agent is None or web_phone_url(settings, agent) is None or behind_proxies(settings):
        return False
    async with _writing_astdb(settings) as client:
        await revoke(client, agent)
    return True


def ice_config(settings: Settings, agent: str, now: float | None = None) -> list[dict[str, object]]:
    """The page's ``pcConfig.iceServers`` for seat ``agent``: ``phones.web.ice_servers``, the TURN
    ones with credentials made for this sign-in (:func:`ivr.core.ice.turn_credentials`), so no TURN
    password is ever in the page's source or the same for two sign-ins."""
    web = settings.phones.web
    if web is None or not web.ice_servers:
        return []
    credentials = None
    if web.turn_secret is not None:
        try:
            secret = turn_secret(web.turn_secret)
        except ConfigError:
            raise NoWebPhone("网页话机的中继（TURN）密钥未配置，请联系管理员。") from None
        credentials = turn_credentials(secret, agent, time.time() if now is None else now, web.turn_lifetime)
    return ice_servers(web.ice_servers, credentials)
