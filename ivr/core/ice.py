"""ICE servers for the desk page's WebRTC phone (issue 23): the ``stun:``/``turn:``/``turns:`` URLs
an operator names, checked where they are written, and the TURN REST API's ephemeral credentials.

Agents behind NAT reach Asterisk's RTP through a TURN relay. A TURN password kept in the page
would be anyone's who read it once; coturn's ``use-auth-secret`` instead trusts credentials
derived from a secret it shares with the console (draft-uberti-behave-turn-rest): username
``<expiry unix time>:<seat>``, password base64(HMAC-SHA1(secret, username)). The console issues a
fresh pair at each sign-in of the page; it stops working at its expiry, with no state kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from ivr.core.conftext import HOSTNAME

ICE_URL = re.compile(r"(?P<scheme>stun|turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[^:?\[\]/@]+)"
                     r"(?::(?P<port>[0-9]{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?")


def ice_url(text: str) -> str:
    """A STUN or TURN server's URL (RFC 7064/7065): ``stun:host[:port]``, ``turn:host[:port]
    [?transport=udp|tcp]``, ``turns:…``; host a name or an IP address (IPv6 in brackets), port
    1-65535; never a user or password in the URL (TURN's come from :func:`turn_credentials`)."""
    if "@" in text:
        raise ValueError(f"{text!r}: no user or password in an ICE server's URL (TURN credentials come from turn_secret)")
    m = ICE_URL.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not stun:host[:port], turn:host[:port][?transport=udp|tcp] or turns:…")
    if m["scheme"].startswith("stun") and m["transport"]:
        raise ValueError(f"{text!r}: ?transport= is for turn: and turns: only")
    host = m["host"]
    try:
        bracketed = host.startswith("[")  # an IPv6 address, and only one, in brackets
        if bracketed != (ipaddress.ip_address(host.strip("[]")).version == 6):
            raise ValueError(host)
    except ValueError:
        if host.startswith("[") or ":" in host or not HOSTNAME.fullmatch(host):
            raise ValueError(f"{text!r}: {host!r} is not a host name or IP address") from None
    if m["port"] is not None and not 1 <= int(m["port"]) <= 65535:
        raise ValueError(f"{text!r}: port {m['port']} is not 1-65535")
    return text


IceUrl = Annotated[str, AfterValidator(ice_url)]


def is_turn(url: str) -> bool:
    """Whether ``url`` names a TURN relay (which needs credentials), not a STUN server."""
    return url.startswith(("turn:", "turns:"))


@dataclass(frozen=True)
class TurnCredentials:
    """One sign-in's TURN username and password, valid until ``expires`` (unix seconds)."""

    username: str
    password: str
    expires: int


def turn_credentials(secret: str, seat: str, now: float, lifetime_s: int) -> TurnCredentials:
    """coturn's REST API credentials for ``seat``, valid ``lifetime_s`` seconds from ``now``."""
    expires = int(now) + lifetime_s
    username = f"{expires}:{seat}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires)


def ice_servers(urls: tuple[str, ...], credentials: TurnCredentials | None) -> list[dict[str, object]]:
    """The browser's ``RTCConfiguration.iceServers``: the STUN URLs as one entry, the TURN URLs as
    another with the credentials (a TURN URL without them is refused by the config)."""
    stun = [u for u in urls if not is_turn(u)]
    turn = [u for u in urls if is_turn(u)]
    out: list[dict[str, object]] = [{"urls": stun}] if stun else []
    if turn and credentials is not None:
        out.append({"urls": turn, "username": credentials.username, "credential": credentials.password})
    return out
