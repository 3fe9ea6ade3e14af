"""A test bed's saved state (bed.json in a registry shared by every checkout): ports, secrets and
pids, enough to find, use and stop a bed from another process (``ivr testbed down NAME``)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ivr.config import state_dir
from ivr.core.secret_policy import agent_secret_variable, supervisor_secret_variable

# Asterisk's RTP range: two ports (RTP, RTCP) per call leg. 1000 holds 200 callers waiting in
# a queue and 200 agents talking to them at once (800), with room for Asterisk's random picks.
RTP_PORTS = 1000


@dataclass
class BedState:
    """Everything needed to find, use and stop a running bed (saved as bed.json)."""

    name: str
    dir: str
    runner: str
    sip_port: int
    ami_port: int
    agi_port: int
    redis_port: int
    pstn_port: int  # sipp citizen calls come from here (the pstn trunk matches it)
    rtp_start: int
    agent_ports: dict[str, int]
    subcenter_ports: dict[str, int]
    ami_secret: str
    testbed_ami_secret: str
    config_dir: str
    caller_key: str = ""  # IVR_CALLER_KEY of the bed's engine (keyed caller digests in its Redis)
    asterisk_pid: int = 0
    redis_pid: int = 0
    engine_pid: int = 0
    rtp_ports: int = RTP_PORTS
    dns_address: str = ""  # dns="none": the silent resolver Asterisk's resolv.conf names
    created: float = field(default_factory=time.time)
    seats_ami_secret: str = ""  # the seat-control AMI user (ivr agents)
    admin_ami_secret: str = ""  # the reload AMI user (apply_config)
    status_ami_secret: str = ""  # the read-only status AMI user (ivr cluster status)
    transfer_ami_secret: str = ""  # the transfer AMI user (ivr transfer, transfer/ami.py)
    agent_secrets: dict[str, str] = field(default_factory=dict)  # each softphone's SIP password (supervisors' too)
    supervise_ami_secret: str = ""  # the supervise AMI user (ivr supervise, supervision/ami.py)
    supervisor_ports: dict[str, int] = field(default_factory=dict)  # each supervisor phone's sipp port
    web_port: int = 0  # the engine's web console (console/)
    http_port: int = 0  # Asterisk's HTTP server: the desk page's WebRTC phone's WebSocket (phones.web)
    metrics_token: str = ""  # IVR_METRICS_TOKEN: Prometheus' bearer token for the console's /metrics
    # several engines (docs/cluster.md): engine i serves FastAGI on engine_ports[i] and its console on
    # web_ports[i]; [0] is agi_port/web_port/engine_pid. Empty: one engine (a bed of an older checkout)
    engine_ports: list[int] = field(default_factory=list)
    web_ports: list[int] = field(default_factory=list)
    engine_pids: list[int] = field(default_factory=list)
    # Redis Sentinel: redis_ports[0] is the first master (redis_port), the others its replicas
    redis_ports: list[int] = field(default_factory=list)
    redis_pids: list[int] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)
    sentinel_pids: list[int] = field(default_factory=list)
    cluster: str = ""  # a node of this cluster bed (testbed/cluster.py); "" = a bed of its own
    # recording.dir of this bed: on the host, outside the rootfs; Asterisk sees it at the same path
    recording_dir: str = ""

    @classmethod
    def load(cls, path: Path) -> "BedState":
        """A saved bed; fields another version of this code wrote (a bed from another checkout
        in the shared registry) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def engines(self) -> int:
        return max(1, len(self.engine_ports))

    def engine_env(self, index: int = 0) -> dict[str, str]:
        """Environment that points ``ivr serve`` (engine ``index``) at this bed."""
        agi_port = self.engine_ports[index] if self.engine_ports else self.agi_port
        web_port = self.web_ports[index] if self.web_ports else self.web_port
        cluster: dict[str, str] = {}
        if len(self.engine_ports) > 1:
            cluster["IVR_AGI_ENGINES"] = ",".join(f"127.0.0.1:{p}" for p in self.engine_ports)
        if self.sentinel_ports:
            cluster["IVR_REDIS_SENTINEL_SERVICE"] = "ivr"
            cluster["IVR_REDIS_SENTINELS"] = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return {
            **cluster,
            "IVR_CONFIG": self.config_dir,
            "IVR_AGI_HOST": "127.0.0.1",
            "IVR_AGI_PORT": str(agi_port),
            "IVR_AMI_HOST": "127.0.0.1",
            "IVR_AMI_PORT": str(self.ami_port),
            "IVR_AMI_SECRET": self.ami_secret,
            "IVR_AMI_SEATS_SECRET": self.seats_ami_secret,
            "IVR_AMI_ADMIN_SECRET": self.admin_ami_secret,
            **({"IVR_AMI_STATUS_SECRET": self.status_ami_secret} if self.status_ami_secret else {}),
            "IVR_AMI_TRANSFER_SECRET": self.transfer_ami_secret,
            **({"IVR_AMI_SUPERVISE_SECRET": self.supervise_ami_secret} if self.supervise_ami_secret else {}),
            # the supervisor phones' SIP passwords, as a deployment's env file holds them: what
            # `ivr reload --asterisk` from this environment renders pjsip with
            **{supervisor_secret_variable(n): self.agent_secrets[n] for n in self.supervisor_ports if n in self.agent_secrets},
            # and the seats' (a web-phone seat's is not used: the console issues one per sign-in, console/web_phone.py)
            **{agent_secret_variable(n): self.agent_secrets[n] for n in self.agent_ports if n in self.agent_secrets},
            "IVR_CALLER_KEY": self.caller_key,
            "IVR_REDIS_URL": self.redis_url,
            # a bed saved by an older checkout has no console port: its engine serves none
            **({"IVR_WEB_PORT": str(web_port)} if web_port else {"IVR_WEB_ENABLED": "false"}),
            "IVR_STATE_DIR": str(Path(self.dir) / "state"),  # pid file, record spool
            "IVR_TRACKING_CDR_FILE": str(Path(self.dir) / "log" / "cdr-custom" / "Master.csv"),
            "IVR_TRACKING_QUEUE_LOG": str(Path(self.dir) / "log" / "queue_log"),
            **({"IVR_RECORDING_DIR": self.recording_dir} if self.recording_dir else {}),
            **({"IVR_METRICS_TOKEN": self.metrics_token} if self.metrics_token else {}),
        }


def registry_dir() -> Path:
    d = state_dir() / "beds"
    d.mkdir(parents=True, exist_ok=True)
    return d


def clusters_dir() -> Path:
    """Where cluster beds (testbed/cluster.py) register their own ports (proxies, carrier) and nodes."""
    d = registry_dir() / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    return d


def registry_file(name: str) -> Path:
    return registry_dir() / f"{name}.json"


def running_beds() -> list[BedState]:
    return [BedState.load(path) for path in sorted(registry_dir().glob("*.json"))]


@contextlib.contextmanager
def registry_lock() -> Iterator[None]:
    """Held while a bed picks its ports and saves them: two beds starting at once (xdist
    workers, two checkouts) must not pick the same ports before either is registered."""
    with open(registry_dir() / "ports.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def held_ports(saved: dict[str, Any]) -> set[int]:
    """Every port a saved bed holds, bound now or not (a softphone's, Asterisk's RTP range).
    Read from the raw bed.json by its naming rule (a field ``*_port`` is a port, ``*_ports`` a
    list or map of ports; ``rtp_ports`` counts the range from ``rtp_start``), so fields that a
    newer checkout adds count too."""
    ports: set[int] = set()
    for key, value in saved.items():
        if key == "rtp_ports":
            continue
        if key.endswith("_port"):
            ports.add(value)
        elif key.endswith("_ports") and isinstance(value, (list, dict)):
            ports.update(value.values() if isinstance(value, dict) else value)
    start, count = saved.get("rtp_start"), saved.get("rtp_ports", RTP_PORTS)
    if isinstance(start, int) and isinstance(count, int):
        ports.update(range(start, start + count))
    return {p for p in ports if isinstance(p, int) and p > 0}  # 0: none (a bed without a console)


def registered_ports() -> set[int]:
    """The ports of every bed in the registry (this process's, other processes', other checkouts')."""
    ports: set[int] = set()
    for path in [*registry_dir().glob("*.json"), *clusters_dir().glob("*.json")]:
        try:
            ports |= held_ports(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError):
            continue  # removed or half-written meanwhile (its bed is stopping or starting)
    return ports
