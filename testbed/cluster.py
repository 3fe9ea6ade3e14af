"""A cluster test bed (issue 20, ``ivr testbed up --nodes N``): N real Asterisk nodes, each a bed
tree of its own with its engines (testbed/cluster_node.py), two real Kamailio proxies in front
(testbed/kamailio.py) and one Redis (or Sentinel group) for every engine, all on loopback.

Every file is the product's: the bed builds the ``cluster:`` section from the ports it picked
(:meth:`ClusterBed.topology`), each node is rendered as ``ivr asterisk-conf render --node NAME``
renders it, and the proxies run the ``kamailio-<proxy>.cfg`` and ``dispatcher.list`` written beside
the first node's files. The carrier is a sipp on ``carrier_port`` (``sip.pstn_match``): only it may
start a call at the proxies. ``stop()`` leaves no process, port or directory; the cluster and its
nodes are in the bed registry, so ``ivr testbed status|down`` see and stop the whole of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ivr.asterisk_conf.kamailio_seats import SECRETS_FILE
from ivr.config import load_config
from ivr.config.cluster import ClusterSettings, Node, Proxy, cluster_problems
from testbed.bed import TestBed
from testbed.cluster_node import NodeBed
from testbed.kamailio import check_config, start_proxy, stop_proxy
from testbed.ports import PortAllocator
from testbed.processes import pid_alive, stop_group
from testbed.lifecycle import running as up_for_block
from testbed.runners import Progress, TestbedError, select_runner
from testbed.state import clusters_dir, registry_file, registry_lock

MAX_NODES = len(string.ascii_lowercase)


@dataclass
class ClusterState:
    """A cluster bed's own part of the registry: its nodes' bed names, proxies and carrier port."""

    name: str
    dir: str
    runner: str
    carrier_port: int  # citizens' calls come from here (sip.pstn_match): the only sender the proxies accept
    proxy_names: list[str]
    proxy_ports: list[int]
    proxy_pids: list[int] = field(default_factory=list)
    node_names: list[str] = field(default_factory=list)  # ast-a, ast-b, ...: Asterisk's systemname
    beds: list[str] = field(default_factory=list)  # each node's bed in the registry, in the same order
    maxcalls: int = 200
    kamailio_dir: str = ""  # the proxies' files and control sockets (ClusterBed.kamailio_dir)
    gateway_port: int = 0  # the carrier's gateway for calls out through the proxies (cluster.carrier); 0: none
    proxy_ws_ports: list[int] = field(default_factory=list)  # each proxy's WebSocket (web phones); []: none
    created: float = field(default_factory=time.time)

    @classmethod
    def load(cls, path: Path) -> "ClusterState":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})

    def save(self) -> None:
        path = clusters_dir() / f"{self.name}.json"
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(self), indent=2))
        os.replace(partial, path)


def web_phones(queues: Path, seats: tuple[str, ...], url: str) -> None:
    """``seats``' phones made the desk page's in ``queues`` (config/queues.yaml), the page opening
    ``url``: edited as an operator would write it (one flow-style line per seat, as config/ has them)."""
    text = queues.read_text(encoding="utf-8")
    for seat in seats:
        [line] = [x for x in text.splitlines() if x.startswith(f"  {seat}: {{") and x.rstrip().endswith("}")]
        text = text.replace(line, line.rstrip()[:-1] + ", phone: web}")
    phones = "phones:\n"
    if phones not in text or "\n  web:" in text:
        raise TestbedError(f"{queues}: no phones section to add web phones to, or one already there")
    queues.write_text(text.replace(phones, phones + f'  web: {{url: "{url}"}}\n', 1), encoding="utf-8")


def running_clusters() -> list[ClusterState]:
    return [ClusterState.load(p) for p in sorted(clusters_dir().glob("*.json"))]


class ClusterBed:
    """``nodes`` Asterisk nodes with ``engines`` engines each, two proxies, one Redis
    (``sentinel``: master, two replicas, three sentinels); every node takes ``maxcalls`` calls.
    ``web_seats``: their phone is the desk page's (``phone: web``), registered over WebSocket at the
    proxies (each proxy's ``ws`` listener; ``phones.web.url`` names the first proxy's)."""

    __test__ = False

    def __init__(self, config_dir: str | Path = "config", nodes: int = 2, engines: int = 1, sentinel: bool = False,
                 name: str | None = None, runner: str | None = None, maxcalls: int = 200, calls_out: bool = False,
                 web_seats: tuple[str, ...] = ()):
        if not 1 <= nodes <= MAX_NODES:
            raise TestbedError(f"nodes: 1 to {MAX_NODES}, got {nodes}")
        self.config_dir, self.node_count, self.engines, self.sentinel = Path(config_dir), nodes, engines, sentinel
        self.runner = select_runner(runner)
        self.name = name or f"cluster-{os.getpid()}-{secrets.token_hex(3)}"
        self.maxcalls = maxcalls
        self.calls_out = calls_out  # cluster.carrier: the nodes call out through the proxies to gateway_port
        self.web_seats = web_seats
        self.state: ClusterState | None = None
        self.nodes: list[TestBed] = []
        self._proxies: list[subprocess.Popen[bytes]] = []

    @property
    def dir(self) -> Path:
        return Path(self.state.dir) if self.state else self.runner.instance_base() / self.name

    @property
    def kamailio_dir(self) -> Path:
        """The proxies' files (config, ``dispatcher.list``) and control sockets. Not under the bed's
        directory: as root the proxies drop to ``nobody``, who must still read ``dispatcher.list``
        on ``dispatcher.reload``, and the runner's directories may lie under ``/root`` (0700). A
        fresh ``mkdtemp`` (never a name someone could have made first), kept in the state."""
        if self.state is not None and self.state.kamailio_dir:
            return Path(self.state.kamailio_dir)
        return self.dir / "kamailio"  # a state saved before the field existed

    # --- the topology ---------------------------------------------------------------------

    def topology(self) -> ClusterSettings:
        """The ``cluster:`` section with every node's and proxy's real ports (checked as config/ is)."""
        assert self.state
        nodes = {}
        for name, bed in zip(self.state.node_names, self.nodes):
            st = bed.state
            assert st
            nodes[name] = Node(sip=f"127.0.0.1:{st.sip_port}", ami=f"127.0.0.1:{st.ami_port}", rtp_start=st.rtp_start,
                               rtp_end=st.rtp_start + st.rtp_ports - 1, maxcalls=self.state.maxcalls,
                               engines=tuple(f"127.0.0.1:{p}" for p in st.engine_ports or [st.agi_port]))
        ws = self.state.proxy_ws_ports or [0] * len(self.state.proxy_ports)
        cluster = ClusterSettings(proxies={n: Proxy(sip=f"127.0.0.1:{p}", ws=f"127.0.0.1:{w}" if w else None)
                                           for n, p, w in zip(self.state.proxy_names, self.state.proxy_ports, ws)},
                                  nodes=nodes,
                                  carrier=self.pstn_match[1:])
        if problems := cluster_problems(cluster, self.pstn_match):
            raise TestbedError("the bed's cluster section is wrong: " + "; ".join(why for _path, why in problems))
        return cluster

    @property
    def carrier(self) -> str:
        assert self.state
        return f"127.0.0.1:{self.state.carrier_port}"

    @property
    def pstn_match(self) -> tuple[str, ...]:
        """The carrier's addresses: where citizens call from, and its gateway for calls out when it has one."""
        assert self.state
        return (self.carrier, *([f"127.0.0.1:{self.state.gateway_port}"] if self.state.gateway_port else []))

    def cluster_yaml(self) -> str:
        """The section as an operator would write it in ``config/cluster.yaml`` (kept in the bed's dir)."""
        c = self.topology()
        lines = ["cluster:", f"  balance: {c.balance}"]
        gateways = ", ".join(f'"{g}"' for g in c.carrier)
        lines += [f"  carrier: [{gateways}]"] if c.carrier else []
        lines += ["  proxies:"]
        lines += [f'    {n}: {{sip: "{p.sip}"' + (f', ws: "{p.ws}"' if p.ws else "") + "}"
                  for n, p in c.proxies.items()]
        lines += ["  nodes:"]
        for n, node in c.nodes.items():
            engines = ", ".join(f'"{e}"' for e in node.engines)
            lines.append(f'    {n}: {{sip: "{node.sip}", ami: "{node.ami}", rtp_start: {node.rtp_start}, '
                         f"rtp_end: {node.rtp_end}, maxcalls: {node.maxcalls}, engines: [{engines}]}}")
        return "\n".join(lines) + "\n"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, progress: Progress = lambda _m: None) -> ClusterState:
        self.runner.ensure(progress)
        if self.dir.exists():
            raise TestbedError(f"cluster bed {self.name} already exists at {self.dir}")
        with registry_lock():
            ports = PortAllocator()
            self.state = ClusterState(name=self.name, dir=str(self.dir), runner=self.runner.name,
                                      carrier_port=ports.one(), proxy_names=["edge-a", "edge-b"],
                                      proxy_ports=[ports.one(), ports.one()], maxcalls=self.maxcalls,
                                      gateway_port=ports.one() if self.calls_out else 0,
                                      proxy_ws_ports=[ports.one(), ports.one()] if self.web_seats else [],
                                      node_names=[f"ast-{string.ascii_lowercase[i]}" for i in range(self.node_count)])
            self.state.save()
        try:
            self.dir.mkdir(parents=True)
            self.state.kamailio_dir = tempfile.mkdtemp(prefix=f"ivr-kamailio-{self.name}-")
            os.chmod(self.state.kamailio_dir, 0o755)  # the proxies read it after they dropped to nobody
            self.state.save()
            self._start_nodes(progress)
            self._start_proxies(progress)
        except BaseException:
            self.stop()
            raise
        return self.state

    def _start_nodes(self, progress: Progress) -> None:
        assert self.state
        loaded = load_config(self.config_dir)  # refused early, before any process starts
        config = self._deployment(loaded.config_dir)
        kamailio_dir = self.kamailio_dir
        for index, node in enumerate(self.state.node_names):
            bed: TestBed = NodeBed(config, self.name, node, self.topology, self.pstn_match, kamailio_dir,
                          redis_host=self.nodes[0] if index else None, engines=self.engines, sentinel=self.sentinel,
                          runner=self.runner.name)
            self.nodes.append(bed)
            self.state.beds.append(bed.name)
            self.state.save()
            bed.reserve(progress)
        (self.dir / "cluster.yaml").write_text(self.cluster_yaml())
        # every engine reads it, as in a deployment (config/cluster.yaml on every host): the node-gone
        # duty watches each node's AMI and tells the nodes' calls apart by it
        (config / "cluster.yaml").write_text(self.cluster_yaml())
        for bed in self.nodes:
            progress(f"starting node {bed.name}")
            bed.launch()

    def _deployment(self, config_dir: Path) -> Path:
        """The cluster's own copy of ``config_dir`` (prompts/ beside it, as in the repository), which
        every node's engines read: the cluster section is written into it once the ports are known,
        never into the caller's directory."""
        root = self.dir / "deployment"
        shutil.copytree(config_dir, root / "config", ignore=shutil.ignore_patterns("cluster.yaml", ".history"))
        (root / "prompts").symlink_to(config_dir.resolve().parent / "prompts")
        if self.web_seats:
            assert self.state and self.state.proxy_ws_ports
            web_phones(root / "config" / "queues.yaml", self.web_seats,
                       f"ws://127.0.0.1:{self.state.proxy_ws_ports[0]}/ws")
        return root / "config"

    def _start_proxies(self, progress: Progress) -> None:
        assert self.state
        kamailio_dir = self.kamailio_dir
        kamailio_dir.mkdir(exist_ok=True)
        rendered = self.nodes[0].dir / "etc"  # what `ivr asterisk-conf render --node` wrote beside Asterisk's files
        seats = [rendered / SECRETS_FILE] if (rendered / SECRETS_FILE).exists() else []  # with agents: their keys
        for path in [rendered / "dispatcher.list", *seats, *(rendered / f"kamailio-{p}.cfg" for p in self.state.proxy_names)]:
            shutil.copy2(path, kamailio_dir / path.name)
        self.state.proxy_pids = [0] * len(self.state.proxy_names)
        for index in range(len(self.state.proxy_names)):
            check_config(self.proxy_cfg(index))
            progress(f"starting proxy {self.state.proxy_names[index]}")
            self.start_proxy(index)

    def proxy_cfg(self, index: int) -> Path:
        assert self.state
        return self.kamailio_dir / f"kamailio-{self.state.proxy_names[index]}.cfg"

    def proxy_log(self, index: int) -> Path:
        assert self.state
        return self.dir / self.state.proxy_names[index] / "kamailio.log"

    def start_proxy(self, index: int) -> None:
        """Start proxy ``index`` (again) on its port; returns once it answers OPTIONS."""
        assert self.state
        proc = start_proxy(self.proxy_cfg(index), self.proxy_log(index).parent, self.state.proxy_ports[index])
        self._proxies.append(proc)
        self.state.proxy_pids[index] = proc.pid
        self.state.save()

    def stop_proxy(self, index: int) -> None:
        """Stop proxy ``index`` (SIGTERM, as an operator or a dying host would take it away)."""
        assert self.state
        stop_proxy(self.state.proxy_pids[index])
        self.state.proxy_pids[index] = 0
        self.state.save()

    def start_engines(self) -> None:
        """Every node's engines, started side by side; returns once all of them listen."""
        for started in [s for bed in self.nodes for s in bed.spawn_engines()]:
            started.wait()

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index``'s Asterisk (no hang-ups, no answers: a crash or power cut)."""
        st = self.nodes[index].state
        assert st
        stop_group(st.asterisk_pid, timeout=2, sig=9)
        st.asterisk_pid = 0
        self.nodes[index].save()

    def restart_node(self, index: int) -> None:
        """Start node ``index``'s Asterisk again on its ports and files; returns once it is fully booted."""
        bed = self.nodes[index]
        bed._start_asterisk()
        bed.save()

    def running(self, keep_logs: Path | None = None,
                progress: Progress = lambda m: print(m, flush=True)) -> contextlib.AbstractContextManager["ClusterBed"]:
        """The cluster and every engine, up for the block; stopped after (logs copied to ``keep_logs``)."""
        return up_for_block(self, keep_logs, progress)

    def stop(self, keep_logs: Path | None = None) -> None:
        """Stop proxies, then nodes (the one that runs Redis last), and remove every directory."""
        st = self.state
        if st is None:
            return
        for pid in st.proxy_pids:
            stop_proxy(pid)
        for proc in self._proxies:
            proc.poll()
        if keep_logs is not None:
            shutil.rmtree(keep_logs, ignore_errors=True)
            keep_logs.mkdir(parents=True)
            for name in st.proxy_names:
                if (log := self.dir / name / "kamailio.log").is_file():
                    shutil.copy2(log, keep_logs / f"{name}-kamailio.log")
        for node, bed in reversed(list(zip(st.node_names, self.nodes))):
            bed.stop(keep_logs=keep_logs / node if keep_logs is not None else None)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.kamailio_dir, ignore_errors=True)
        (clusters_dir() / f"{st.name}.json").unlink(missing_ok=True)
        self.state = None

    @classmethod
    def attach(cls, name: str) -> "ClusterBed":
        """A handle on a cluster bed started by another process (enough to stop it)."""
        path = clusters_dir() / f"{name}.json"
        if not path.exists():
            raise TestbedError(f"no cluster bed named {name!r} (see `ivr testbed status`)")
        state = ClusterState.load(path)
        bed = cls(nodes=max(1, len(state.node_names)), name=name, runner=state.runner)
        bed.state = state
        present = [(node, b) for node, b in zip(state.node_names, state.beds) if registry_file(b).exists()]
        state.node_names = [node for node, _b in present]  # a node that never registered has nothing to stop
        bed.nodes = [TestBed.attach(b) for _node, b in present]
        return bed

    def proxies_alive(self) -> list[bool]:
        assert self.state
        return [bool(pid) and pid_alive(pid) for pid in self.state.proxy_pids]
