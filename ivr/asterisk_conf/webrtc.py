"""The desk page's WebRTC phone (issue 23): http.conf (Asterisk's HTTP server, which carries SIP
over WebSocket) and what a web-phone seat's endpoint adds to a SIP softphone's.

The browser's SIP runs over a WebSocket into Asterisk's own HTTP server (res_http_websocket,
res_pjsip_transport_websocket); media is DTLS-SRTP with ICE (``webrtc=yes``). The server listens
on loopback only: in production the console's TLS proxy forwards ``wss://…/ws`` to it
(docs/console.md), in a test bed the page opens ``ws://127.0.0.1:<port>/ws`` itself.

Behind cluster proxies the browser registers at the proxies' WebSocket listeners instead
(kamailio_ws.py), where the seat's lock is: a node serves no WebSocket, and its endpoint for the
seat is still ``webrtc=yes``, its SIP over UDP to the proxies, its media straight to the browser.
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import host_port, split_ip_port, value
from ivr.core.phone_auth import AUTH_FAMILY

# G.711 first: the carrier and the trunks speak it; Opus only when a browser offers nothing else
# (browsers all do G.711). Asterisk's offer to the page puts the caller's codec first, but Chrome
# answers in its own order (PCMU before PCMA): the page keeps only the offer's first codec
# (console/static/phone.js), so an A-law call is not transcoded (benchmarks/README.md, section 11)
WEB_CODECS = "ulaw,alaw,opus"


def web_phones(s: Settings) -> list[str]:
    """The seats whose phone is the desk page's."""
    return [name for name, agent in s.agents.items() if agent.phone == "web"]


def served_here(s: Settings) -> bool:
    """Whether this Asterisk serves the web phones' WebSocket: some seat has one and no proxies
    stand in front (behind them the phone registers there)."""
    return s.phones.web is not None and bool(web_phones(s)) and not (s.cluster is not None and s.cluster.proxies)


def http_conf(s: Settings) -> str:
    """Asterisk's HTTP server: on, on ``phones.web.listen``, only when it serves the web phones
    (:func:`served_here`); nothing but the WebSocket is served (no status page, no static files)."""
    web = s.phones.web
    if web is None or not served_here(s):
        return "[general]\nenabled=no\n"
    address, port = split_ip_port(web.listen)
    return f"""[general]
enabled=yes
bindaddr={value(address)}
bindport={port}
enablestatic=no
enable_status=no
"""


def ws_transport(s: Settings) -> str:
    """The PJSIP transport for SIP over WebSocket (its socket is the HTTP server's); none without web phones."""
    if not served_here(s):
        return ""
    return "[transport-ws]\ntype=transport\nprotocol=ws\n"


def web_endpoint_options(s: Settings) -> str:
    """What a web-phone seat's endpoint has beyond a softphone's: WebRTC media (DTLS-SRTP, ICE,
    AVPF, rtcp-mux) with the operator's certificate or one Asterisk generates at start, and
    G.711 before Opus (:data:`WEB_CODECS`)."""
    web = s.phones.web
    assert web is not None  # refused in config otherwise (queues.model.web_phone_problems)
    dtls = (f"dtls_cert_file={value(web.dtls_cert)}\ndtls_private_key={value(web.dtls_key)}\n"
            if web.dtls_cert and web.dtls_key else "dtls_auto_generate_cert=yes\n")
    return f"webrtc=yes\n{dtls}"


def web_media(media: str) -> str:
    """A softphone's media lines with the web phone's codecs."""
    return media.replace("allow=ulaw,alaw\n", f"allow={WEB_CODECS}\n", 1)

# A web seat's registration lasts 2 minutes at most (JsSIP asks for 600 s and renews at about
# half of what the 200 OK grants): a page whose password was revoked (its agent signed out
# elsewhere) fails its next renewal and its contact is gone within that, since Asterisk has no
# way to remove a registered contact on request (docs/console.md)
WEB_AOR = "maximum_expiration=120\n"


def web_auth_note(name: str) -> str:
    """Where a web seat's digest account is: not in this file (its static secret registers
    nothing), in AstDB, a fresh password for each sign-in of its agent (docs/console.md)."""
    return f"; {name}-auth: in AstDB ({AUTH_FAMILY}), issued by the console for each sign-in\n"


def rtp_ice(s: Settings) -> str:
    """rtp.conf's ICE lines for web phones: ``stunaddr`` only when the operator names a STUN server
    for Asterisk (``phones.web.asterisk_stun``: an Asterisk behind NAT learns its public address
    for its candidates). No ``turnaddr``: Asterisk sits where the agents' TURN relay reaches it,
    and a relay of its own would need a static TURN password in this file (docs/console.md)."""
    web = s.phones.web
    if web is None or web.asterisk_stun is None or not web_phones(s):
        return ""
    return f"stunaddr={value(host_port(web.asterisk_stun))}\n"
