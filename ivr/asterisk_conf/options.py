"""What a caller chooses about a rendering: where Asterisk keeps its files, the AMI users and
their secrets, and the files a test bed adds (:attr:`RenderOptions.extra_files`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Events nobody in production reads, yet Asterisk builds them for every AGI command and
# dialplan step: about half of its CPU per AGI command (benchmarks/README.md). Asterisk 22 also
# wakes every AMI session for every event it builds, even a session whose events are off (a
# stand-by engine's): the fewer events a call makes, the less each extra session costs per call
# (issue 19's CPU target, benchmarks/README.md §8). Disabled here, they are never built at all.
TRACED_EVENTS = ("AGIExecStart", "AGIExecEnd", "Newexten", "VarSet", "DTMFBegin", "DTMFEnd")
QUIET_EVENTS = (
    *TRACED_EVENTS,
    "TestEvent",  # Debian builds the test framework in: app_queue and res_agi report to it
    "DeviceStateChange",  # the seats' device state reaches the engine as QueueMemberStatus
    "MusicOnHoldStart", "MusicOnHoldStop", "NewCallerid", "NewConnectedLine", "LocalBridge",
)
# Files extensions.conf ``#include``s that only a test bed fills (with its test dialplan): production
# renders them empty, since Asterisk refuses a dialplan whose include is missing.
EXTRA_FILES = ("extensions_testbed.conf",)


@dataclass(frozen=True)
class Directories:
    """Where this Asterisk keeps its files, as seen by the Asterisk process."""

    etc: str = "/etc/asterisk"
    varlib: str = "/var/lib/asterisk"
    data: str = "/usr/share/asterisk"
    db: str = "/var/lib/asterisk"
    run: str = "/var/run/asterisk"
    spool: str = "/var/spool/asterisk"
    log: str = "/var/log/asterisk"
    keys: str = "/usr/share/asterisk/keys"
    modules: str = "/usr/lib/x86_64-linux-gnu/asterisk/modules"


@dataclass(frozen=True)
class RenderOptions:
    ami_secret: str
    directories: Directories = Directories()
    agi_url: str = ""  # default: agi://<agi.host>:<agi.port>/ivr
    engine_timeout: int | None = None  # dialplan's limit; default: agi.call_timeout + 30 s
    agent_secrets: dict[str, str] = field(default_factory=dict)  # phones' SIP passwords (seats', supervisors'); overrides the environment
    seats_ami_secret: str | None = None  # adds the seat-control user (ami.seats_username)
    admin_ami_secret: str | None = None  # adds the reload user (ami.admin_username)
    transfer_ami_secret: str | None = None  # adds the transfer user (ami.transfer_username)
    status_ami_secret: str | None = None  # adds the read-only status user (ami.status_username)
    supervise_ami_secret: str | None = None  # adds the supervise user (ami.supervise_username)
    testbed_ami_secret: str | None = None  # adds a read-all AMI user for tests only
    # a test bed that traces AGI keeps TRACED_EVENTS on (its tests watch them), the rest stays off
    disabled_events: tuple[str, ...] = QUIET_EVENTS
    system_name: str = "ivr12345"  # a cluster node's is its name (it prefixes uniqueid, hence linkedid)
    node: str | None = None  # with a cluster section: the node whose Asterisk files these are
    kamailio_dir: str = "/etc/kamailio"  # where the proxies read dispatcher.list
    kamailio_run_dir: str = "/run/kamailio"  # the proxies' control sockets (kamctl.py)
    probe_interval_s: int | None = None  # the proxies' OPTIONS probes (None: kamailio.PING_INTERVAL_S); a test bed: 1
    # whole files by name (only EXTRA_FILES), written verbatim: the test bed's own dialplan, which
    # the engine's package neither ships nor imports
    extra_files: Mapping[str, str] = field(default_factory=dict)
