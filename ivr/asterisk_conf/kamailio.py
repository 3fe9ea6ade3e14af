"""``kamailio-<proxy>.cfg``: the SIP edge in front of the Asterisk nodes (issue 20, docs/cluster.md).

One file per proxy (each listens on its own address; the routing is the same), all reading the one
``dispatcher.list``. What it does with a call:

- only the carrier's addresses (``sip.pstn_match``) may start one: anyone else gets 403;
- the INVITE goes to a node chosen by the dispatcher: algorithm 10 (call load) by default, since
  calls last minutes and a node's load is the calls it holds, not the calls it was sent; it needs
  ``duid`` per node and ``record_route()`` so that the BYE passes here and the load comes down;
  algorithm 9 (the nodes' weights) with ``balance: weight``;
- a 5xx or a timeout (408) moves the same INVITE to the next node (``failure_route``,
  ``ds_next_dst``); a node that timed out is marked down at once and probed;
- every node is probed with OPTIONS (``ds_ping_interval``, ``ds_probing_mode 1``), so a dead one is
  skipped and a revived one used again;
- nothing needs DNS: addresses are IP literals, ``dns``/``rev_dns`` off, no ``auto_aliases``.
"""

from __future__ import annotations

from ivr.asterisk_conf import kamailio_ws as ws
from ivr.asterisk_conf import kamtext as k
from ivr.asterisk_conf.kamctl import RUN_DIR, ctl_section
from ivr.asterisk_conf.dispatcher import NODES_SET
from ivr.asterisk_conf.kamailio_seats import MODULES as SEAT_MODULES
from ivr.asterisk_conf.kamailio_seats import seat_params, seat_routes
from ivr.asterisk_conf.edge_out import carrier_routes, not_out, to_carrier
from ivr.config.cluster import ClusterSettings
from ivr.core.qualify import Qualify

ALGORITHMS = {"load": 10, "weight": 9}
PING_INTERVAL_S = 5  # a dead node is skipped within this (and at once after a timed-out INVITE)
INVITE_TIMEOUT_MS = 2000  # no 100 Trying from a node within this: try the next one
# tmx: $T_reply_code in the failure log (`kamailio -c` does not notice its absence: only start-up does)
MODULES = ("tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog", "sanity", "dispatcher")


def kamailio_cfg(cluster: ClusterSettings, proxy: str, pstn_match: tuple[str, ...], directory: str,
                 ping_interval: int = PING_INTERVAL_S, seat_ring_s: int | None = None,
                 run_dir: str = RUN_DIR, phones: Qualify | None = None, web_url: str | None = None) -> str:
    """The config of ``proxy``; ``directory`` is where this proxy finds ``dispatcher.list`` (and the
    seats' keys); ``ping_interval``: seconds between OPTIONS probes of each node. With ``seat_ring_s``
    (the longest ring of a queue) it is also the seats' registrar and lock
    (:mod:`ivr.asterisk_conf.kamailio_seats`); ``phones``: the phones' probe (``phones.qualify``),
    which it runs too. ``run_dir``: its control socket's directory (kamctl.py). ``web_url``
    (``phones.web.url``, seats with web phones): the proxy's ``ws`` listener takes their
    WebSocket (:mod:`ivr.asterisk_conf.kamailio_ws`)."""
    listen = k.socket(cluster.proxies[proxy].sip)
    carrier = " || ".join(_carrier(m) for m in pstn_match) or "0"
    seats = seat_ring_s is not None
    ws_listen = cluster.proxies[proxy].ws if seats and web_url else None
    tcp = ws.ws_globals(ws_listen) if ws_listen else "disable_tcp=yes\n"
    web_routes = ws.ws_routes(ws_listen, web_url) if ws_listen and web_url else ""
    modules = "".join(f'loadmodule "{m}.so"\n' for m in MODULES + (SEAT_MODULES if seats else ())
                      + (ws.MODULES if ws_listen else ()))
    modules += ctl_section(run_dir, proxy, cluster.control_group)
    probing = seats and phones is not None and bool(phones.every)
    params = seat_params(cluster, proxy, directory, phones) if seats else ""
    routes = seat_routes(cluster, proxy, seat_ring_s, phones, bool(ws_listen)) + "\n" if seat_ring_s is not None else ""
    to_seats = "    route(SEATS);  # registrations and calls to seats; returns for anything else\n" if seats else ""
    probes = "    route(SEAT_PROBE);  # a node's probe of a seat's phone; returns for any other\n" if probing else ""
    seat_dialog = "        route(SEAT_DIALOG);  # a seat's call: its phone and its node; returns for others\n" if seats else ""
    # call-load bookkeeping only for algorithm 10: under 9 no call is counted, and each would miss
    load = cluster.balance == "load"
    update, unset = ("ds_load_update();", "ds_load_unset();") if load else ("", "")
    bye = f'    if (is_method("BYE"){not_out(cluster)}) {{\n        ds_load_update();\n    }}\n' if load else ""
    on_reply = '    t_on_reply("FROM_NODE");\n' if load else ""
    # ds_next_dst() drops the node it tried; once none is left ds_load_unset() finds no node to
    # release and the call stays counted on the last one (Kamailio's dispatcher): ask first
    has_next = "$xavp(_dsdst_[1]=>uri) != $null && " if load else ""
    answered = ('onreply_route[FROM_NODE] {\n    if (status =~ "^2[0-9][0-9]$") {\n        ds_load_update();\n    }\n}\n\n'
                if load else "")
    return f"""#!KAMAILIO
# proxy {k.name(proxy)}: generated by `ivr asterisk-conf render` from the cluster topology: do not edit

debug=2
log_stderror=no
log_facility=LOG_LOCAL0
children=2
auto_aliases=no
dns=no
rev_dns=no
dns_try_ipv6=no
use_dns_cache=off
dns_srv_lb=no
dns_try_naptr=no
{tcp}listen=udp:{listen}

{modules}
modparam("tm", "fr_timer", {k.integer(INVITE_TIMEOUT_MS, 100, 60_000)})
modparam("tm", "fr_inv_timer", 120000)
modparam("rr", "append_fromtag", 1)
modparam("dispatcher", "list_file", {k.path(directory.rstrip("/") + "/dispatcher.list")})
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_hash_size", 9)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:{k.name(proxy)}@{k.address(listen.rpartition(":")[0])}")
modparam("dispatcher", "ds_ping_interval", {k.integer(ping_interval, 1, 3600)})
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("dispatcher", "ds_ping_reply_codes", "class=2")
{params}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("1511", "7")) {{
        exit;
    }}
    if (has_totag()) {{
{seat_dialog}        route(IN_DIALOG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            {update}
            t_relay();
        }}
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
{probes}    if (is_method("OPTIONS") && uri == myself) {{  # the carrier's keepalive: this proxy is up
        sl_send_reply("200", "OK");
        exit;
    }}
    t_check_trans();
{to_seats}{to_carrier(cluster)}    if (!is_method("INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!({carrier})) {{
        xlog("L_NOTICE", "INVITE from $si:$sp is not from the carrier: refused\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    remove_hf("Route");
    record_route();
    if (!ds_select_dst("{NODES_SET}", "{ALGORITHMS[cluster.balance]}")) {{
        sl_send_reply("503", "No Asterisk Node");
        exit;
    }}
{on_reply}    t_on_failure("NEXT_NODE");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

route[IN_DIALOG] {{
    # only the nodes and the carrier take part in a call here: anyone else's request with a to-tag
    # and this proxy's Route would otherwise be relayed wherever its Request-URI points
    if (!(ds_is_from_list("{NODES_SET}") || {carrier})) {{
        xlog("L_NOTICE", "in-dialog $rm from $si:$sp, neither a node nor the carrier: refused\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if (!loose_route()) {{
        if (is_method("ACK") && t_check_trans()) {{
            t_relay();
            exit;
        }}
        sl_send_reply("404", "Not Here");
        exit;
    }}
{bye}    t_relay();
}}

{routes}{web_routes}{carrier_routes(cluster)}{answered}failure_route[NEXT_NODE] {{
    if (t_is_canceled()) {{
        {unset}
        exit;
    }}
    if (t_check_status("^(5[0-9][0-9]|408)$")) {{
        if (t_check_status("408")) {{
            ds_mark_dst("ip");
        }}
        if ({has_next}ds_next_dst()) {{
            xlog("L_NOTICE", "call $ci: node failed ($T_reply_code), next: $du\\n");
            t_on_failure("NEXT_NODE");
            t_relay();
            exit;
        }}
    }}
    {unset}
}}
"""


def _carrier(match: str) -> str:
    """One of ``sip.pstn_match`` as a test: address or network, and its port when it names one."""
    if match.count(":") == 1:  # IPv4 address:port
        host, _, port = match.partition(":")
        return f"(src_ip == {k.network(host)} && src_port == {k.integer(int(port), 1, 65535)})"
    return f"src_ip == {k.network(match)}"
