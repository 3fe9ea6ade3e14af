"""One Asterisk node of a cluster bed (issue 20, docs/cluster.md "The SIP edge"): a bed tree of its
own (SIP, AMI, RTP range, engines) whose files are rendered the
way ``ivr asterisk-conf render --node NAME`` renders them, from the cluster section the cluster bed
builds out of every node's and proxy's real ports. The first node's bed runs the cluster's one Redis
(or Sentinel group), as a node host may (docs/cluster.md, "What runs where"); the others use it.

Seats are the cluster's, not a node's ("Agents across nodes"): no fixed contact, so each node's seat
AOR lists the proxies, where the seat's one phone registers (testbed/cluster_seats.py); one password
per seat for every node and proxy; nobody is logged in at start (a seat logs in once, through the
wish, and every node's applier adds it). The phones are probed every :data:`PHONES` s (one bed's
1 s would send each phone an OPTIONS per node and proxy each second, and drop a phone slow to
answer on a loaded machine at the proxies).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ivr.asterisk_conf import RenderOptions
from ivr.config import Settings
from ivr.config.cluster import ClusterSettings
from queues.model import PhoneProbe
from testbed.bed import TestBed
from testbed.ports import PortAllocator
from testbed.state import BedState

PROBE_INTERVAL_S = 1  # the bed's proxies probe every second: a dead node is skipped within a second or so
PHONES = PhoneProbe(every=5, timeout=2.0)  # a dead phone is 话机离线 on every node within 7 s


class NodeBed(TestBed):
    """Node ``node`` of a cluster bed. ``topology`` gives the whole cluster section once every node
    and proxy has its ports; ``carrier`` is the carrier's address:ports (``sip.pstn_match``, which the
    proxies check); ``redis_host``: the node whose bed runs the shared Redis (None: this one);
    ``kamailio_dir``: where the proxies read ``dispatcher.list``."""

    __test__ = False

    def __init__(self, config_dir: str | Path, cluster: str, node: str, topology: Callable[[], ClusterSettings],
                 carrier: tuple[str, ...], kamailio_dir: Path, redis_host: TestBed | None = None, engines: int = 1,
                 sentinel: bool = False, runner: str | None = None):
        super().__init__(config_dir, name=f"{cluster}-{node}", runner=runner, engines=engines,
                         sentinel=sentinel and redis_host is None, staffed=False)
        self.cluster, self.node, self.topology, self.carrier = cluster, node, topology, carrier
        self.kamailio_dir, self.redis_host = kamailio_dir, redis_host

    @property
    def settings(self) -> Settings:
        """The bed's settings with the cluster section and the carrier: what ``render --node`` reads."""
        s = super().settings
        cluster = self.topology()
        agents, supervision = s.agents, s.supervision
        if cluster.proxies:  # the seats' and supervisors' phones register at the proxies: no node rings a fixed contact
            agents = {n: a.model_copy(update={"contact": None}) for n, a in s.agents.items()}
            supervision = s.supervision.model_copy(update={"supervisors": {
                n: p.model_copy(update={"contact": None}) for n, p in s.supervision.supervisors.items()}})
        return s.model_copy(update={"cluster": cluster, "agents": agents, "supervision": supervision,
                                    "phones": s.phones.model_copy(update={"qualify": PHONES}),
                                    "sip": s.sip.model_copy(update={"pstn_match": self.carrier})})

    def _new_state(self, ports: PortAllocator, rtp_start: int, d: Path) -> BedState:
        state = super()._new_state(ports, rtp_start, d)
        state.cluster = self.cluster
        if self.redis_host is not None:  # the shared Redis: its addresses, none of its pids
            assert self.redis_host.state
            shared = self.redis_host.state
            state.redis_port, state.redis_ports = shared.redis_port, list(shared.redis_ports)
            state.sentinel_ports = list(shared.sentinel_ports)
            # one IVR_CALLER_KEY for the cluster: the caller index in the shared Redis is keyed by it
            # (a caller's tickets and callbacks are found whichever node took the call)
            state.caller_key = shared.caller_key
            # one reload, one status and one transfer secret for the cluster, as a deployment has them
            # in every node's ivr.env: `ivr reload --asterisk` and `ivr cluster status` reach every
            # node, and a desk on any engine transfers a call whichever node holds it
            state.admin_ami_secret, state.status_ami_secret = shared.admin_ami_secret, shared.status_ami_secret
            state.transfer_ami_secret = shared.transfer_ami_secret
            state.supervise_ami_secret = shared.supervise_ami_secret  # supervision asks the node of the call
            # a seat (or supervisor phone) has one password wherever it is challenged: the proxies' registrar (rendered
            # from the first node's settings) and every node (the seat's own calls)
            state.agent_secrets = dict(shared.agent_secrets)
        return state

    def _start_redis(self) -> None:
        if self.redis_host is None:
            super()._start_redis()

    def _render_options(self) -> RenderOptions:
        return dataclasses.replace(super()._render_options(), node=self.node, kamailio_dir=str(self.kamailio_dir),
                                   kamailio_run_dir=str(self.kamailio_dir), probe_interval_s=PROBE_INTERVAL_S)
