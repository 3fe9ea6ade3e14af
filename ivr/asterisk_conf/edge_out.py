"""Calls out through the proxies (docs/cluster.md "Calls out"), both halves.

The node's: its ``pstn`` AOR lists the proxies (qualified: the first that answers is dialed), so
``Dial(PJSIP/<number>@pstn)`` of a callback goes to a proxy instead of the carrier's gateway.

The proxy's: with ``cluster.carrier``, a node's
INVITE that is no seat's goes to the carrier's gateways, primary first, the next one on a 5xx or a
timeout, record-routed so the BYE passes here too (the edge's in-dialog route lets the nodes and
the carrier through). The carrier sees every call from the proxies, the addresses its trunk knows,
whichever node placed it. Only the nodes may: anyone else's INVITE still meets the edge's carrier
check (403), so the proxy is no way out to the carrier for a stranger.
"""

from __future__ import annotations

from ivr.asterisk_conf.dispatcher import CARRIER_SET, NODES_SET
from ivr.asterisk_conf.node_seats import QUALIFY_S  # as the seats' contacts at the proxies
from ivr.config import Settings
from ivr.config.cluster import ClusterSettings
from ivr.core.conftext import value

OUT_PARAM = "out=1"  # the Record-Route's mark of a call out: its BYE releases no node's call load

# what a node may dial out: a number (a citizen's), nothing the carrier could read as a route
NUMBER = "^[+]?[0-9]{3,20}$"


def to_carrier(cluster: ClusterSettings) -> str:
    """The request route's line that sends the nodes' calls out; "" without ``cluster.carrier``."""
    if not cluster.carrier:
        return ""
    return f'''    if (is_method("INVITE") && ds_is_from_list("{NODES_SET}")) {{
        route(TO_CARRIER);  # a node's call out (a callback): the seats' were taken above
    }}
'''


def not_out(cluster: ClusterSettings) -> str:
    """The condition the edge's BYE adds before releasing a node's call load: not a call out (the
    dispatcher counted none for it, and would log an error for each)."""
    return f' && !check_route_param("{OUT_PARAM}")' if cluster.carrier else ""


def carrier_routes(cluster: ClusterSettings) -> str:
    """``route[TO_CARRIER]`` and its failure route; "" without ``cluster.carrier``."""
    if not cluster.carrier:
        return ""
    return f'''route[TO_CARRIER] {{
    if (!($rU =~ "{NUMBER}")) {{
        xlog("L_NOTICE", "call out from node $si:$sp to a user that is no number: refused\\n");
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    remove_hf("Route");
    if (!ds_select_domain("{CARRIER_SET}", "8")) {{  # by priority: the primary, while it answers probes
        sl_send_reply("503", "No Carrier Gateway");
        exit;
    }}
    record_route(";{OUT_PARAM}");
    t_on_failure("NEXT_GATEWAY");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

failure_route[NEXT_GATEWAY] {{
    if (t_is_canceled()) {{
        exit;
    }}
    if (t_check_status("^(5[0-9][0-9]|408)$")) {{
        if (t_check_status("408")) {{
            ds_mark_dst("ip");
        }}
        if (ds_next_domain()) {{
            xlog("L_NOTICE", "call out $ci: gateway failed ($T_reply_code), next: $ru\\n");
            t_on_failure("NEXT_GATEWAY");
            t_relay();
        }}
    }}
}}

'''


def pstn_aor(s: Settings) -> str:
    """The ``pstn`` AOR (where calls out go): the proxies when they carry calls out, else
    ``sip.pstn_contact`` (the carrier's gateway, dialed by the node itself); "" with neither."""
    if s.cluster is not None and s.cluster.proxies and s.cluster.carrier:
        contacts = "".join(f"contact=sip:{value(p.sip)}\n" for p in s.cluster.proxies.values())
        return f"[pstn]\ntype=aor\n{contacts}qualify_frequency={QUALIFY_S}\n"
    if s.sip.pstn_contact:
        return f"[pstn]\ntype=aor\ncontact={value(s.sip.pstn_contact)}\nqualify_frequency=0\n"
    return ""
