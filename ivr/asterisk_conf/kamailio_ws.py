"""The web phones' half of a proxy's ``kamailio-<proxy>.cfg`` (issue 23, docs/console.md "Web phones
behind the cluster's proxies"): the desk page's SIP over WebSocket, registered at the proxies like
any seat's phone, so that the seat's lock holds for it too.

- Each proxy with ``ws`` listens there (TCP, plain: the console's TLS proxy is in front in
  production) and upgrades an HTTP ``GET`` of ``phones.web.url``'s path carrying the SIP WebSocket
  subprotocol (``websocket``'s ``ws_handle_handshake``); any other HTTP request gets 404.
- A browser's Contact is a made-up ``….invalid`` host: the phone is reached through its connection.
  Its REGISTER stores the connection's address as the contact's ``received`` (what
  ``fix_nated_register`` would: the registrar's ``received_avp``), and an INVITE or probe for the
  seat goes there (``$du``). In a dialog, the browser's Contact in its requests and answers gets
  the connection as ``;alias=`` (``add_contact_alias``), which the request back to it resolves
  (``handle_ruri_alias``): no DNS, no guessing.
- Only signalling passes here: the media (DTLS-SRTP, ICE) goes between the browser and the node's
  Asterisk, whose endpoint for the seat is ``webrtc=yes`` (no rtpengine).
"""

from __future__ import annotations

import re

from ivr.asterisk_conf import kamtext as k
from ivr.core.conftext import UnsafeValue

MODULES = ("xhttp", "websocket", "nathelper")
WS_TEST = 'nat_uac_test("64")'  # the request (or reply) came over a WebSocket connection
HTTP_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,255}")
TCP_LIFETIME_S = 3605  # above the registration's minute and the websocket module's keepalive


def url_path(url: str) -> str:
    """The path of ``phones.web.url`` (``/`` when it has none), checked for a Kamailio string."""
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not HTTP_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise UnsafeValue(f"{path!r} is not a path of letters, digits and _ . / -")
    return path


def ws_globals(listen: str) -> str:
    """Core settings and the listener: TCP on, for the WebSocket only."""
    return f"""disable_tcp=no
tcp_accept_no_cl=yes
tcp_connection_lifetime={k.integer(TCP_LIFETIME_S, 60, 86_400)}
listen=tcp:{k.socket(listen)}  # the desk pages' web phones (WebSocket)
"""


def ws_routes(listen: str, url: str) -> str:
    """``event_route[xhttp:request]``: the WebSocket handshake on the listener and ``url``'s path,
    404 else; the browsers' answers' route."""
    port = k.integer(int(k.socket(listen).rpartition(":")[2]), 1, 65535)
    return f"""event_route[xhttp:request] {{
    if ($Rp == {port} && $hu == "{url_path(url)}" && $hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade"
            && $rm == "GET") {{
        if (ws_handle_handshake()) {{
            exit;
        }}
    }}
    xhttp_reply("404", "Not Found", "", "");
}}

onreply_route[SEAT_WS_REPLY] {{  # a browser's answer: its Contact made reachable through its connection
    if ({WS_TEST} && is_present_hf("Contact")) {{
        add_contact_alias();
    }}
}}

"""


def register_received(avp: str) -> str:
    """In ``route[SEAT_REGISTER]``: a browser's contact is its connection (``received``)."""
    return f"""    if ({WS_TEST}) {{
        {avp} = $sut;  # sip:<address>:<port>;transport=ws(s)
    }}
"""


BROWSER = "$var(browser)"  # 1: the seat's phone is a browser (set by :func:`to_phone`)


def to_phone() -> str:
    """After ``$ru = $ulc(phone=>addr)``: a browser is reached through its connection, a hop set
    for the one ``t_relay`` and the answer's Contact aliased."""
    return f"""    {BROWSER} = 0;
    if ($ulc(phone=>received) =~ ";transport=wss?$") {{
        {BROWSER} = 1;
        $du = $ulc(phone=>received);
        t_on_reply("SEAT_WS_REPLY");
    }}
"""


def callee_keepalive() -> str:
    """The dialog's keepalive of the seat's side, for a phone only: the dialog module would send a
    browser's to the Contact as it came (``….invalid``, not the connection), fail and end the call.
    A browser that vanishes is the node's to notice (its RTP stops; the citizen hangs up)."""
    return f"""    if ({BROWSER} == 0) {{
        dlg_set_property("ka-dst");
    }}
"""


def in_dialog() -> str:
    """In ``route[SEAT_DIALOG]`` after ``loose_route``: a browser's Contact aliased, a request to a
    browser sent through its connection, the answer's Contact aliased."""
    return f"""        if ({WS_TEST} && is_present_hf("Contact")) {{
            add_contact_alias();
        }}
        if ($ru =~ ";alias=") {{
            handle_ruri_alias();
        }}
        t_on_reply("SEAT_WS_REPLY");
"""


def from_browser() -> str:
    """In ``route[FROM_SEAT]``: a browser's own call, its Contact aliased for the node's requests back."""
    return f"""    if ({WS_TEST}) {{
        add_contact_alias();
        t_on_reply("SEAT_WS_REPLY");
    }}
"""
