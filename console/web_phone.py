"""The desk page's WebRTC phone (issue 23): the SIP account the console issues to a seat's
signed-in agent, and the one WebSocket address the page's CSP lets it open.

The account is the seat's own (``IVR_AGENT_SECRET_<SEAT>``, what Asterisk's generated
pjsip_generated.conf holds): the agent signed in for that seat is the person who, with a separate
softphone, was handed this very password to type in; the page only fetches it after sign-in, over
POST with the CSRF token, never cached and never in the page's source (docs/console.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

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
    """The seat has no web phone, or its password is not in this console's environment."""


def web_phone_url(settings: Settings, agent: str) -> str | None:
    """The WebSocket URL the seat's desk page opens; None when the seat's phone is not the page's."""
    seat = settings.agents.get(agent)
    if seat is None or seat.phone != "web" or settings.phones.web is None:
        return None
    return settings.phones.web.url


def account(settings: Settings, agent: str) -> PhoneAccount:
    """The seat's SIP account (checked by the config: the seat is a plain name)."""
    url = web_phone_url(settings, agent)
    if url is None:
        raise NoWebPhone("本座席未启用网页话机。")
    password = agent_secret(agent)
    if not password:
        raise NoWebPhone("网页话机账号未配置，请联系管理员。")
    domain = url.split("://", 1)[1].split("/", 1)[0]
    return PhoneAccount(ws=url, uri=f"sip:{agent}@{domain}", user=agent, password=password,
                        display=settings.agents[agent].name)


def connect_src(settings: Settings, agent: str) -> str:
    """The CSP ``connect-src`` of seat ``agent``'s desk: the page itself and its one WebSocket."""
    url = web_phone_url(settings, agent)
    return "'self'" + (f" {url}" if url else "")


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
