"""One Asterisk node of a cluster (issue 20): the settings its files are rendered from, and the
Kamailio files written beside them.

A node's Asterisk is the single-node Asterisk with the node's own addresses: its SIP transport and
media address, its AMI, its RTP range, its engines, and, when proxies stand in front, the proxies'
addresses where the carrier's were (citizens' calls now arrive from them). Deriving these settings
keeps one renderer per file instead of a cluster variant of each.
"""

from __future__ import annotations

from typing import Mapping

from ivr.asterisk_conf.dispatcher import dispatcher_list
from ivr.asterisk_conf.kamailio import PING_INTERVAL_S, kamailio_cfg
from ivr.asterisk_conf.kamctl import RUN_DIR
from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE, seats_secrets_cfg
from ivr.asterisk_conf.kamtext import name as kam_name
from ivr.asterisk_conf.pjsip import registrar_phones
from ivr.asterisk_conf.webrtc import web_phones
from ivr.config import ConfigError, Settings
from ivr.config.cluster import proxy_matches
from ivr.core.conftext import split_ip_port


def node_settings(s: Settings, node: str | None) -> Settings:
    """``s`` as seen by ``node``'s Asterisk; ``s`` itself without a cluster (``node`` must be None)."""
    if s.cluster is None:
        if node is not None:
            raise ConfigError(f"node {node!r}: there is no cluster section in config/, so no nodes")
        return s
    if node not in s.cluster.nodes:
        known = ", ".join(s.cluster.nodes)
        raise ConfigError(f"name the cluster node to render Asterisk's files for (--node: one of {known})"
                          if node is None else f"node {node!r} is not in the cluster (there: {known})")
    n = s.cluster.nodes[node]
    sip_host, sip_port = split_ip_port(n.sip)
    ami_host, ami_port = split_ip_port(n.ami)
    sip = {"bind": sip_host, "port": sip_port, "media_address": sip_host, "rtp_start": n.rtp_start, "rtp_end": n.rtp_end}
    if s.cluster.proxies:
        sip["pstn_match"] = proxy_matches(s.cluster)
    agi = {"engines": n.engines} if n.engines else {}
    return s.model_copy(update={"sip": s.sip.model_copy(update=sip), "agi": s.agi.model_copy(update=agi),
                                "ami": s.ami.model_copy(update={"host": ami_host, "port": ami_port})})


def edge_files(s: Settings, kamailio_dir: str, ping_interval: int | None = None,
               agent_secrets: Mapping[str, str] | None = None, run_dir: str = RUN_DIR) -> dict[str, str]:
    """``kamailio-<proxy>.cfg`` for each proxy and their ``dispatcher.list``; none without proxies.
    With agents, the proxies are also their registrar, and the seats' keys go into
    :data:`~ivr.asterisk_conf.kamailio_seats.SECRETS_FILE` (the same passwords as the nodes').
    ``run_dir``: where each proxy opens its control socket (kamctl.py)."""
    if s.cluster is None or not s.cluster.proxies:
        return {}
    ring = max((q.ring_timeout for q in s.queues.values()), default=0) if s.agents else None
    interval = PING_INTERVAL_S if ping_interval is None else ping_interval
    web_url = s.phones.web.url if s.phones.web is not None and web_phones(s) else None
    files = {f"kamailio-{kam_name(proxy)}.cfg": kamailio_cfg(s.cluster, proxy, s.sip.pstn_match, kamailio_dir,
                                                              interval, ring, run_dir, s.phones.qualify, web_url)
             for proxy in s.cluster.proxies}
    if s.agents:  # the seats' phones, and the supervisors' softphones that register like them
        files[SECRETS_FILE] = seats_secrets_cfg(registrar_phones(s, agent_secrets or {}), s.supervision.supervisors)
    return {**files, "dispatcher.list": dispatcher_list(s.cluster)}
