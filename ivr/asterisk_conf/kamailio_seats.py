"""The seats' half of each proxy's ``kamailio-<proxy>.cfg`` (issue 20, docs/cluster.md "Agents across
nodes"): a registrar for the agents' phones and the per-seat lock, added to the edge of
:mod:`ivr.asterisk_conf.kamailio`.

- A supervisor's softphone registers like a seat's phone (its key in the same table, docs/supervision.md):
  the node that holds a supervised call rings it through the proxy; its own calls reach a node that
  hangs them up.
- A phone registers at a proxy with digest auth (401 first; a wrong password or another seat's
  name: 403). The seats' digest keys are HA1 values (``MD5(seat:realm:password)``, hex) in a file
  of their own, 0600 (:data:`SECRETS_FILE`), included by every proxy's config: no password is
  written anywhere, and hex cannot break Kamailio's syntax whatever the password holds.
- ``usrloc`` in memory, short expiry, one contact per seat; the proxy stores its own address as
  the contact's ``Path``, and ``dmq_usrloc`` replicates the contact to the other proxies.
- A seat INVITE comes from a node (identified by its SIP address:port). A proxy that finds the
  seat registered through another proxy (the Path) hands the INVITE to that one, so every call to a
  seat passes the one proxy the phone registered through: there a ``cfgutils`` lock around the
  seat's ``dialog`` profile admits the first dialog and answers 486 to any other while it lasts.
  ``record_route()`` keeps the BYE on the proxy, so the seat is freed when the call ends;
  keep-alives (``ka-src``, ``ka-dst``) end a dialog one of whose sides vanished.
- A seat's own call (an INVITE whose From user is a seat, from anywhere) proves the seat's digest
  here (407), then, with the proxy's ``seat_sip``, goes to a node from that second socket: no node
  takes it for the carrier's, so the node identifies the seat by name and checks its password
  itself (the phone answers both challenges); no header from the proxy is trusted. Without
  ``seat_sip`` it is refused.
- With the phones probed (``phones.qualify``, docs/seats.md "Phones that stop answering"), usrloc's
  keepalive sends each phone registered here an OPTIONS every ``every`` s and drops a contact that
  has not answered for ``every`` + ``timeout`` (usrloc then gives it 10 s more); a peer's replicated
  contacts are the peer's to probe (``server_id``, ``ka_filter``). A node's own probe of a seat
  (OPTIONS ``sip:<seat>@<proxy>``) is not this proxy's to answer: it goes where an INVITE for the
  seat would go, the phone (its answer, or 408 here) or the peer it registered through, and a seat
  with no contact gets 480. The nodes count only a 2xx (``qualify_2xx_only``), so each node marks
  a dead phone's seat unavailable within its own ``every`` + ``timeout``, as on one node, and back at
  the phone's next answer; the keepalive is what frees the proxy of the dead contact before its
  registration expires.
- Everything else from outside the nodes, the proxies and the carrier is refused by the edge.
"""

from __future__ import annotations

import hashlib
import math
from typing import Collection, Mapping

from ivr.asterisk_conf import kamailio_ws as ws
from ivr.asterisk_conf import kamtext as k
from ivr.asterisk_conf.dispatcher import NODES_SET
from ivr.config.cluster import ClusterSettings
from ivr.core.conftext import UnsafeValue, secret, split_ip_port
from ivr.core.qualify import Qualify
from ivr.core.secret_policy import agent_secret_variable, supervisor_secret_variable

REALM = "ivr12345"  # one realm for every proxy: a phone that fails over keeps its credentials
SECRETS_FILE = "kamailio-seats-ha1.cfg"
SEAT_TABLE = "seat_ha1"  # htable: seat name → HA1; also the list of seats (no entry: not a seat)
REGISTRATION_S = 60  # a phone re-registers within a minute, so a dead proxy's contacts age out
KA_INTERVAL_S = 30  # the lowest the dialog module takes
DIALOG_TIMEOUT_S = 4 * 3600  # safety net: longer than any call a seat takes
SEAT_FR_MS = 4000  # the phone's first answer (100/180) within this, or 408
CONTACT_AVP = "$avp(seat_contact)"  # where the keepalive goes: the phone's Contact, not this proxy (its Path)
MODULES = ("textopsx", "usrloc", "registrar", "auth", "htable", "dialog", "cfgutils", "dmq", "dmq_usrloc")


def ha1(seat: str, password: str) -> str:
    """The seat's digest key for :data:`REALM` (what the phone proves it knows)."""
    return hashlib.md5(f"{seat}:{REALM}:{password}".encode()).hexdigest()  # SIP digest is MD5 (RFC 2617)


def seat_keys(passwords: Mapping[str, str], supervisors: Collection[str] = ()) -> dict[str, str]:
    """Each phone's HA1: the seats', and the ``supervisors``' phones that register here like a seat's
    (a password the policy refuses is an error naming its variable)."""
    def variable(name: str) -> str:
        return supervisor_secret_variable(name) if name in supervisors else agent_secret_variable(name)
    return {k.name(seat): ha1(seat, secret(pw, variable(seat))) for seat, pw in passwords.items()}


def seats_secrets_cfg(passwords: Mapping[str, str], supervisors: Collection[str] = ()) -> str:
    """The 0600 file every proxy includes: the phones' HA1 loaded into :data:`SEAT_TABLE` at start
    (and into running proxies by ``ivr reload --asterisk``: ivr/cluster_seat_keys.py)."""
    lines = [f'    $sht({SEAT_TABLE}=>{seat}) = "{key}";\n' for seat, key in seat_keys(passwords, supervisors).items()]
    return ("# seats' digest keys (HA1), generated by `ivr asterisk-conf render`: keep it 0600\n"
            f"event_route[htable:mod-init] {{\n{''.join(lines)}}}\n")


def _from(addresses: list[str]) -> str:
    """A test true for requests sent from one of ``addresses`` (address:port), false if none."""
    tests = []
    for a in addresses:
        host, port = split_ip_port(a)
        tests.append(f"(src_ip == {k.network(host)} && src_port == {k.integer(port, 1, 65535)})")
    return " || ".join(tests) or "0"


def keepalive_params(cluster: ClusterSettings, proxy: str, phones: Qualify) -> str:
    """usrloc's keepalive of the phones registered at ``proxy``: an OPTIONS each ``every`` s (its
    timer), a contact silent for ``every`` + ``timeout`` dropped. ``server_id`` (the proxy's place
    in the topology, from 1) marks this proxy's own contacts, the only ones it probes."""
    me = k.socket(cluster.proxies[proxy].sip)
    every = k.integer(phones.every, 1, 300)
    silent = k.integer(phones.every + math.ceil(phones.timeout), 2, 320)
    from_uri = f"sip:{k.name(proxy)}@{k.address(me.rpartition(':')[0])}"
    return f"""server_id={k.integer(list(cluster.proxies).index(proxy) + 1, 1, 64)}
modparam("usrloc", "timer_interval", {every})
modparam("usrloc", "ka_mode", 1)
modparam("usrloc", "ka_filter", 1)
modparam("usrloc", "ka_timeout", {silent})
modparam("usrloc", "ka_from", "{from_uri}")
modparam("usrloc", "ka_domain", "{k.address(me.rpartition(':')[0])}")
"""


def seat_params(cluster: ClusterSettings, proxy: str, directory: str, phones: Qualify | None = None) -> str:
    """Module parameters, and the include of the seats' keys (in ``directory``); with ``phones``
    probed, the keepalive (:func:`keepalive_params`)."""
    if not cluster.proxies.get(proxy):
        raise UnsafeValue(f"{proxy!r} is not a proxy of the cluster")
    me = k.socket(cluster.proxies[proxy].sip)
    peers = [k.socket(p.sip) for name, p in cluster.proxies.items() if name != proxy]
    notify = "".join(f'modparam("dmq", "notification_address", "sip:{p}")\n' for p in peers)
    seat_sip = cluster.proxies[proxy].seat_sip
    listen = f"listen=udp:{k.socket(seat_sip)}  # the seats' own calls leave from here\n" if seat_sip else ""
    keepalive = keepalive_params(cluster, proxy, phones) if phones is not None and phones.every else ""
    return f"""{listen}modparam("usrloc", "db_mode", 0)
modparam("registrar", "use_path", 1)
modparam("registrar", "path_mode", 0)
modparam("registrar", "received_avp", "{CONTACT_AVP}")
modparam("registrar", "default_expires", {k.integer(REGISTRATION_S, 30, 3600)})
modparam("registrar", "max_expires", {k.integer(REGISTRATION_S, 30, 3600)})
modparam("registrar", "min_expires", 10)
modparam("auth", "nonce_expire", 60)
modparam("htable", "htable", "{SEAT_TABLE}=>size=8;")
modparam("dialog", "profiles_with_value", "seat")
modparam("dialog", "default_timeout", {k.integer(DIALOG_TIMEOUT_S, 60, 86_400)})
modparam("dialog", "ka_timer", 10)
modparam("dialog", "ka_interval", {k.integer(KA_INTERVAL_S, 30, 3600)})
modparam("cfgutils", "lock_set_size", 8)
modparam("dmq", "server_address", "sip:{me}")
{notify}modparam("dmq", "multi_notify", 0)
modparam("dmq_usrloc", "enable", 1)
modparam("dmq_usrloc", "sync", 1)
{keepalive}#!include_file {k.path(directory.rstrip("/") + "/" + SECRETS_FILE)}
"""


def _peer_hops(others: list[str]) -> str:
    """The seat registered through a peer (the contact's Path): the request, unchanged, to that proxy."""
    return "".join(f"""    if ($ulc(phone=>path) == "<sip:{hop};lr>") {{
        $du = "sip:{hop};lr";
        if (!t_relay()) {{
            sl_reply_error();
        }}
        exit;
    }}
""" for hop in others)


def probe_route(me: str, others: list[str], from_nodes: str, phones: Qualify, web: bool = False) -> str:
    """``route[SEAT_PROBE]``: a node's (or a peer's) OPTIONS for a seat goes where the seat's INVITE
    would: the phone answers it (or this proxy, 408, within two thirds of the node's ``timeout``),
    or the peer the phone registered through; no contact: 480. Returns for any other request."""
    fr_ms = k.integer(max(200, int(phones.timeout * 1000 * 2 / 3)), 200, 10_000)
    return f"""
route[SEAT_PROBE] {{
    if (!is_method("OPTIONS") || $sht({SEAT_TABLE}=>$rU) == $null || !({from_nodes})) {{
        return;
    }}
    t_check_trans();
    if (!reg_fetch_contacts("location", "$ru", "phone")) {{
        sl_send_reply("480", "Seat Not Registered");
        exit;
    }}
    t_set_fr(0, {fr_ms});
{_peer_hops(others)}    if ($ulc(phone=>path) != "<sip:{me};lr>") {{
        sl_send_reply("480", "Seat Not Reachable");
        exit;
    }}
    $ru = $ulc(phone=>addr);
{ws.to_phone() if web else ""}    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""


def seat_routes(cluster: ClusterSettings, proxy: str, ring_timeout_s: int, phones: Qualify | None = None,
                web: bool = False) -> str:
    """``route[SEATS]`` (called by the edge's request route for every new request; returns for
    the carrier's) and its helpers. ``ring_timeout_s`` is the longest ring of any queue: a seat
    INVITE is cancelled just after it, should its node vanish while the phone rings. With
    ``phones`` probed, ``route[SEAT_PROBE]`` too (:func:`probe_route`); ``web``: browsers register
    here over WebSocket too (kamailio_ws.py)."""
    me = k.socket(cluster.proxies[proxy].sip)
    others = [k.socket(p.sip) for name, p in cluster.proxies.items() if name != proxy]
    peers = _from([p.sip for name, p in cluster.proxies.items() if name != proxy])
    nodes = _from([n.sip for n in cluster.nodes.values()])
    seat_sip = cluster.proxies[proxy].seat_sip
    from_seat = f"""{ws.from_browser() if web else ""}    remove_hf("Route");
    if (!ds_select_dst("{NODES_SET}", "4")) {{  # round robin: a feature code or transfer is short
        sl_send_reply("503", "No Asterisk Node");
        exit;
    }}
    force_send_socket(udp:{k.socket(seat_sip)});  # not the carrier's socket: the node identifies the seat by name
    dlg_manage();  # its BYE, from the phone or the node, is a known dialog's
    record_route();
    t_on_failure("SEAT_NEXT_NODE");
    if (!t_relay()) {{
        sl_reply_error();
    }}
""" if seat_sip else '    sl_send_reply("403", "Forbidden");  # no socket for the seats\' own calls (seat_sip)\n'
    failover = """
failure_route[SEAT_NEXT_NODE] {
    if (!t_is_canceled() && t_check_status("^(5[0-9][0-9]|408)$") && ds_next_dst()) {
        t_on_failure("SEAT_NEXT_NODE");
        t_relay();
    }
}
""" if seat_sip else ""
    peer_hops = _peer_hops(others)
    probe = probe_route(me, others, f"{nodes} || {peers}", phones, web) if phones is not None and phones.every else ""
    # the keepalive's address: the Contact's URI (a REGISTER whose Contact is not one URI is refused)
    keepalive = f"""    if (is_present_hf("Contact") && $ct != "*") {{
        {CONTACT_AVP} = $(ct{{tobody.uri}});
        if ({CONTACT_AVP} == $null) {{
            sl_send_reply("400", "One Contact Please");
            exit;
        }}
    }}
""" if probe else ""
    if web:
        keepalive += ws.register_received(CONTACT_AVP)
    return f"""route[SEATS] {{
    if (is_method("KDMQ")) {{  # registrations replicated between the proxies, from them only
        if ({peers}) {{
            dmq_handle_message();
            exit;
        }}
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if (is_method("REGISTER")) {{
        route(SEAT_REGISTER);
        exit;
    }}
    if (is_method("INVITE") && ({nodes} || {peers})) {{
        if ($sht({SEAT_TABLE}=>$rU) != $null) {{
            route(TO_SEAT);
            exit;
        }}
        return;  # a node's other calls: the edge decides
    }}
    if (is_method("INVITE") && $sht({SEAT_TABLE}=>$fU) != $null) {{  # a seat's own call, whoever sends it
        route(FROM_SEAT);
        exit;
    }}
}}

route[SEAT_DIALOG] {{  # in a dialog the dialog module follows (to or from a seat), whoever takes part
    if (is_known_dlg() && (loose_route() || (is_method("ACK") && t_check_trans()))) {{
{ws.in_dialog() if web else ""}        t_relay();
        exit;
    }}
}}

route[SEAT_AUTH] {{  # exits unless the request is a seat's, proved by its digest (401/407 first, 403)
    if (!is_present_hf("Authorization") && !is_present_hf("Proxy-Authorization")) {{
        auth_challenge("{REALM}", "1");
        exit;
    }}
    if ($sht({SEAT_TABLE}=>$au) == $null) {{  # not a seat: no key to check (an empty one would pass)
        xlog("L_NOTICE", "$rm from $si:$sp as an unknown user: refused\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if (!pv_auth_check("{REALM}", "$sht({SEAT_TABLE}=>$au)", "1", "1")) {{
        $var(rc) = $rc;
        if ($var(rc) == -2 || $var(rc) == -8) {{  # wrong password, or another seat's name in To/From
            xlog("L_NOTICE", "$rm from $si:$sp as $au: refused ($var(rc))\\n");
            sl_send_reply("403", "Forbidden");
            exit;
        }}
        auth_challenge("{REALM}", "1");
        exit;
    }}
    consume_credentials();
}}

route[SEAT_REGISTER] {{
    route(SEAT_AUTH);
    remove_hf("Path");  # the phone's own Path is not trusted: this proxy is the contact's path
    append_hf("Path: <sip:{me};lr>\\r\\n");
    msg_apply_changes();
{keepalive}    if (!save("location", "0x04")) {{  # one contact per seat: a new one replaces the old
        sl_reply_error();
    }}
}}

route[FROM_SEAT] {{
    route(SEAT_AUTH);  # the node checks the phone again with its own challenge (Authorization)
{from_seat}}}

route[TO_SEAT] {{
    $var(seat) = $rU;
    remove_hf("Route");  # a peer proxy's hop to this one
    if (!reg_fetch_contacts("location", "$ru", "phone")) {{
        sl_send_reply("480", "Seat Not Registered");
        exit;
    }}
    t_set_fr({k.integer((ring_timeout_s + 5) * 1000, 1000, 600_000)}, {k.integer(SEAT_FR_MS, 500, 60_000)});
{peer_hops}    if ($ulc(phone=>path) != "<sip:{me};lr>") {{
        sl_send_reply("480", "Seat Not Reachable");
        exit;
    }}
    $ru = $ulc(phone=>addr);  # registered through this proxy: the phone itself
{ws.to_phone() if web else ""}    lock("$var(seat)");  # check and claim in one step: two nodes may ring the seat at once
    get_profile_size("seat", "$var(seat)", "$var(calls)");
    if ($var(calls) > 0) {{
        unlock("$var(seat)");
        xlog("L_NOTICE", "seat $var(seat) has a call: 486 to $si:$sp\\n");
        sl_send_reply("486", "Busy Here");
        exit;
    }}
    dlg_manage();
    set_dlg_profile("seat", "$var(seat)");
    unlock("$var(seat)");
    dlg_set_property("ka-src");
{ws.callee_keepalive() if web else '    dlg_set_property("ka-dst");' + chr(10)}    record_route();
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}
{probe}{failover}"""
