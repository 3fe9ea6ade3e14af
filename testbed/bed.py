"""An isolated test bed: a real Asterisk running the project's ``asterisk-conf/``, a real
Redis, and (on demand) the engine, each on free loopback ports in a private directory.

Used by the pytest fixture (tests/integration/conftest.py) and by ``ivr testbed up|down``.
Several beds run side by side; ``stop()`` leaves no process, directory or port behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from ivr.ami.client import AmiClient
from ivr.asterisk_conf import TRACED_EVENTS, Directories, RenderOptions, reload_modules, write
from ivr.config import LoadedConfig, Settings, load_config, state_dir
from ivr.core.secret_policy import fresh_secret
from testbed.dialplan import testbed_dialplan
from testbed.dns import SilentResolver
from testbed.engines import EngineProcesses
from testbed.servers import ServerProcesses
from testbed.sentinel import SentinelGroup, stop_all
from testbed.ports import PortAllocator, bed_range
from testbed.processes import pid_alive, stop_group
from testbed.lifecycle import running as up_for_block
from testbed.runners import Progress, TestbedError, select_runner
from testbed.state import RTP_PORTS, BedState, registry_dir, registry_file, registry_lock, running_beds
from queues.model import PhoneProbe
from transfer.model import Qualify

BED_QUALIFY = Qualify(every=1, timeout=0.5)  # the trunks' OPTIONS probe in a bed: a dead gateway is known within 1.5 s
# agents' phones likewise; their fixed contacts are sipps that run only during the calls they take,
# so those are not probed (they would be 话机离线 between calls): only registered softphones are
BED_PHONES = PhoneProbe(every=1, timeout=0.5, fixed=False)

# the saved state lives in testbed.state; these names stay importable from here (tests, benchmarks, cli)
__all__ = ["RTP_PORTS", "BedState", "DnsMode", "TestBed", "registry_dir", "registry_file", "running_beds"]

DnsMode = Literal["host", "none"]


class TestBed(ServerProcesses, EngineProcesses, SentinelGroup):
    __test__ = False

    def __init__(self, config_dir: str | Path = "config", name: str | None = None, runner: str | None = None,
                 trace_agi: bool = True, rtp_ports: int = RTP_PORTS, dns: DnsMode = "host", staffed: bool = True,
                 engines: int = 1, sentinel: bool = False):
        """``trace_agi``: keep AGIExec*, Newexten, VarSet and DTMF events on (tests watch them); False = production's AMI.
        ``rtp_ports``: size of Asterisk's RTP range (two per call leg). ``dns="none"``: Asterisk
        gets no working resolver, only :class:`SilentResolver`, which records every query
        (``bed.dns.queries``) and answers none, as on a network without DNS.
        ``staffed``: every configured agent is logged in once Asterisk is up (as a shift starts).
        ``engines``: that many engines serve the node; ``sentinel``: Redis is a master, two replicas and
        three Sentinels (docs/cluster.md)."""
        if engines < 1:
            raise TestbedError(f"engines must be at least 1, got {engines}")
        self.engines, self.sentinel = engines, sentinel
        self.loaded: LoadedConfig = load_config(config_dir)
        self.trace_agi = trace_agi
        self.staffed = staffed
        if rtp_ports < 2 or rtp_ports % 2:
            raise TestbedError(f"rtp_ports must be an even number of ports (RTP + RTCP per leg), got {rtp_ports}")
        self.rtp_ports = rtp_ports
        self.registered_phones: frozenset[str] = frozenset()  # agents with no fixed contact (see settings)
        self.dns_mode = dns
        self.dns: SilentResolver | None = None
        self.runner = select_runner(runner)
        self.name = name or f"bed-{os.getpid()}-{secrets.token_hex(3)}"
        self.state: BedState | None = None
        self._asterisk: subprocess.Popen[bytes] | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._engine: subprocess.Popen[bytes] | None = None

    # --- paths ---------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return Path(self.state.dir) if self.state else self.runner.instance_base() / self.name

    def inner(self, sub: str) -> str:
        """Path of ``dir/sub`` as the Asterisk process sees it."""
        return self.runner.inner_path(self.dir / sub)

    @property
    def settings(self) -> Settings:
        """The config with this bed's ports and the sipp peers' addresses filled in."""
        assert self.state
        s = self.loaded.settings
        st = self.state
        return s.model_copy(
            update={
                "ami": s.ami.model_copy(update={"port": st.ami_port}),
                "agi": s.agi.model_copy(update={"port": st.agi_port, "env_file": self.inner("engine.env"),
                                                "engines": tuple(f"127.0.0.1:{p}" for p in st.engine_ports)
                                                if len(st.engine_ports) > 1 else s.agi.engines}),
                "redis": s.redis.model_copy(update={"url": st.redis_url, **({
                    "sentinel_service": "ivr", "sentinels": tuple(f"127.0.0.1:{p}" for p in st.sentinel_ports)}
                    if st.sentinel_ports else {})}),
                "sip": s.sip.model_copy(
                    update={
                        "port": st.sip_port,
                        "rtp_start": st.rtp_start,
                        "rtp_end": st.rtp_start + st.rtp_ports - 1,
                        "pstn_match": (f"127.0.0.1:{st.pstn_port}",),
                        # calls out to citizens (callbacks) ring a sipp phone on that port
                        "pstn_contact": f"sip:127.0.0.1:{st.pstn_port}",
                    }
                ),
                # each seat's phone is a sipp on its own port, except ``registered_phones``': theirs
                # only register (tests/integration/test_seat_phones.py)
                # nor a web phone's (``phone: web``, the desk page's: phones.web names the bed's
                # http_port, tests/integration/test_console_web_phone.py)
                "agents": {
                    n: a.model_copy(update={"contact": None if n in self.registered_phones or a.phone == "web"
                                            else f"sip:{n}@127.0.0.1:{st.agent_ports[n]}"})
                    for n, a in s.agents.items()
                },
                "phones": s.phones.model_copy(update={"qualify": BED_PHONES}),
                # a gateway's sipp runs only for the test that calls it: probed each second, so a
                # stopped one is known down at once (testbed.calls.trunk_state waits for either)
                "subcenters": {
                    n: c.model_copy(update={"host": "127.0.0.1", "port": st.subcenter_ports[n], "qualify": BED_QUALIFY})
                    for n, c in s.subcenters.items()
                },
                "emergency": s.emergency.model_copy(update={"host": "127.0.0.1", "port": st.subcenter_ports["emergency"],
                                                            "qualify": BED_QUALIFY})
                if s.emergency and "emergency" in st.subcenter_ports else s.emergency,
                # another platform is this very bed (its own SIP port): a platform transfer
                # comes back in on the platform trunk, as a second call with its own ticket
                "platforms": {n: p.model_copy(update={"host": "127.0.0.1", "port": st.sip_port})
                              for n, p in s.platforms.items()},
                # each supervisor's phone is a sipp on its own port (tests/integration/test_supervision.py)
                "supervision": s.supervision.model_copy(update={"supervisors": {
                    n: p.model_copy(update={"contact": f"sip:{n}@127.0.0.1:{st.supervisor_ports[n]}"})
                    for n, p in s.supervision.supervisors.items() if n in st.supervisor_ports}}),
                # recordings: a directory of this bed's own, outside the rootfs (bind-mounted in)
                "recording": s.recording.model_copy(update={"dir": st.recording_dir}) if st.recording_dir
                else s.recording,
            }
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, progress: Progress = lambda _m: None) -> BedState:
        self.reserve(progress)
        return self.launch()

    def reserve(self, progress: Progress = lambda _m: None) -> BedState:
        """Pick and register this bed's ports and secrets; nothing runs yet (a cluster bed
        reserves every node before it renders any: each node's files name the others)."""
        self.runner.ensure(progress)
        for tool in ("redis-server", "sipp"):
            if not shutil.which(tool):
                raise TestbedError(f"{tool} is not installed (apt-get install redis-server sip-tester)")
        d = self.runner.instance_base() / self.name
        if d.exists():
            raise TestbedError(f"test bed {self.name} already exists at {d}")
        with registry_lock():
            base = PortAllocator().block(bed_range(self.rtp_ports, self._peers()))
            self.state = self._new_state(self._own_ports(base, self.rtp_ports), base, d)
            self.save()  # registered at once: a bed starting in another process sees these ports taken
        return self.state

    def launch(self) -> BedState:
        """Start the reserved bed: its files, Redis, Asterisk (and its seats logged in)."""
        assert self.state
        try:
            if self.dns_mode == "none":
                self.dns = SilentResolver().start()
                self.state.dns_address = self.dns.address
            self._prepare_tree()
            self._start_redis()
            self._start_asterisk()
            if self.staffed:
                asyncio.run(self.log_in_agents())
        except BaseException:
            self.stop()
            raise
        self.save()
        return self.state

    def _peers(self) -> int:
        """Softphones, sub-centers and the carrier trunk: their ports are bound only at times."""
        s = self.loaded.settings
        return len(s.agents) + len(s.subcenters) + len(s.supervision.supervisors) + 1

    def _own_ports(self, rtp_start: int, rtp_ports: int) -> PortAllocator:
        return PortAllocator(rtp_start + rtp_ports, rtp_start + bed_range(rtp_ports, self._peers()))

    def _new_state(self, ports: PortAllocator, rtp_start: int, d: Path) -> BedState:
        """Fresh ports and secrets for this bed (call under :func:`registry_lock`, then save)."""
        s = self.loaded.settings
        state = BedState(
            name=self.name,
            dir=str(d),
            runner=self.runner.name,
            sip_port=ports.one(),
            ami_port=ports.one(),
            agi_port=ports.one(),
            redis_port=ports.one(),
            pstn_port=ports.one(),
            web_port=ports.one(),
            http_port=ports.one(),
            rtp_start=rtp_start,
            rtp_ports=self.rtp_ports,
            agent_ports={n: ports.one() for n in s.agents},
            subcenter_ports={n: ports.one() for n in [*s.subcenters, *(["emergency"] if s.emergency else [])]},
            ami_secret=fresh_secret(),
            testbed_ami_secret=fresh_secret(),
            seats_ami_secret=fresh_secret(),
            admin_ami_secret=fresh_secret(),
            status_ami_secret=fresh_secret(),
            transfer_ami_secret=fresh_secret(),
            agent_secrets={n: fresh_secret() for n in [*s.agents, *s.supervision.supervisors]},
            supervise_ami_secret=fresh_secret(),
            supervisor_ports={n: ports.one() for n in s.supervision.supervisors},
            caller_key=secrets.token_urlsafe(24),
            metrics_token=secrets.token_urlsafe(24),
            config_dir=str(self.loaded.config_dir.resolve()),
            recording_dir=str(state_dir() / "recordings" / self.name),
        )
        if self.engines > 1:
            state.engine_ports = [state.agi_port, *(ports.one() for _ in range(self.engines - 1))]
            state.web_ports = [state.web_port, *(ports.one() for _ in range(self.engines - 1))]
            state.engine_pids = [0] * self.engines
        if self.sentinel:
            state.redis_ports = [state.redis_port, ports.one(), ports.one()]
            state.sentinel_ports = [ports.one() for _ in range(3)]
        return state

    async def apply_config(self) -> None:
        """Read config/ again and give Asterisk the new configuration without dropping calls:
        files rendered again, then the dialplan, queues and PJSIP reloaded (what a deployment
        does after ``ivr asterisk-conf render``). New agents get a softphone port and password."""
        assert self.state
        self.loaded = load_config(self.loaded.config_dir)
        with registry_lock():
            ports = self._own_ports(self.state.rtp_start, self.state.rtp_ports)
            for name in self.loaded.settings.agents:
                if name not in self.state.agent_ports:
                    self.state.agent_ports[name] = ports.one()
                    self.state.agent_secrets[name] = fresh_secret()
            self.save()
        self._render()
        client = AmiClient("127.0.0.1", self.state.ami_port, self.settings.ami.admin_username,
                           self.state.admin_ami_secret, events="off")
        await client.connect()
        try:
            await reload_modules(client)  # as `ivr asterisk-conf apply` does, with the reload user
        finally:
            client.close()

    def seats_ami(self) -> AmiClient:
        """An AMI client as the seat-control user (connect it in the running loop)."""
        assert self.state
        return AmiClient("127.0.0.1", self.state.ami_port, self.settings.ami.seats_username,
                         self.state.seats_ami_secret, events="off")

    async def log_in_agents(self, agents: list[str] | None = None) -> None:
        """Log agents in (all configured ones by default), as each would from the engine."""
        from queues.seat_control import SeatControl

        client = self.seats_ami()
        await client.connect()
        try:
            control = SeatControl(client, self.settings)
            for agent in agents if agents is not None else list(self.settings.agents):
                await control.login(agent)
        finally:
            client.close()

    def running(self, keep_logs: Path | None = None,
                progress: Progress = lambda m: print(m, flush=True)) -> contextlib.AbstractContextManager["TestBed"]:
        """The bed and its engine, up for the block; stopped after (logs copied to ``keep_logs``)."""
        return up_for_block(self, keep_logs, progress)

    def _prepare_tree(self) -> None:
        for sub in ("etc", "varlib", "db", "run", "spool", "log/cdr-custom", "data/sounds/zh", "redis", "sipp", "state"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if self.state and self.state.recording_dir:
            (Path(self.state.recording_dir) / "incoming").mkdir(parents=True, exist_ok=True)
        # Stock English sounds and keys are shared read-only; zh prompts are per bed.
        os.symlink("/usr/share/asterisk/sounds/en_US_f_Allison", self.dir / "data/sounds/en")
        os.symlink("/usr/share/asterisk/keys", self.dir / "data/keys")
        os.symlink("/usr/share/asterisk/documentation", self.dir / "data/documentation")
        self._install_prompts()
        self._render()

    def _render(self) -> None:
        assert self.state
        env_file = self.dir / "engine.env"
        process_env = {**self.state.engine_env(), "IVR_STATE_DIR": self.inner("state")}
        env_file.write_text("".join(f"{k}={v}\n" for k, v in process_env.items()))
        env_file.chmod(0o600)
        write(self.settings, self._render_options(), self.dir / "etc")
        if self.dns is not None:
            (self.dir / "resolv.conf").write_text(self.dns.resolv_conf())

    def _render_options(self) -> RenderOptions:
        assert self.state
        dirs = Directories(
            etc=self.inner("etc"), varlib=self.inner("varlib"), data=self.inner("data"),
            db=self.inner("db"), run=self.inner("run"), spool=self.inner("spool"),
            log=self.inner("log"), keys=self.inner("data/keys"),
        )
        options = RenderOptions(
            ami_secret=self.state.ami_secret,
            seats_ami_secret=self.state.seats_ami_secret,
            admin_ami_secret=self.state.admin_ami_secret,
            status_ami_secret=self.state.status_ami_secret or None,
            transfer_ami_secret=self.state.transfer_ami_secret,
            supervise_ami_secret=self.state.supervise_ami_secret or None,
            agent_secrets=self.state.agent_secrets,
            testbed_ami_secret=self.state.testbed_ami_secret,
            extra_files={"extensions_testbed.conf": testbed_dialplan()},  # the test callers and benchmarks
            directories=dirs,
            system_name=self.name,
        )
        if self.trace_agi:  # the traced events on, the rest as production has them
            options = dataclasses.replace(options, disabled_events=tuple(
                e for e in options.disabled_events if e not in TRACED_EVENTS))
        return options

    def _install_prompts(self) -> None:
        """Build the Mandarin prompts (incremental) and install them as this bed's zh sounds."""
        from ivr.hot_reload import default_prompts_dir
        from ivr.prompts.build import PromptBuildError, build_prompts, install_sounds

        prompts_dir = default_prompts_dir(self.loaded.config_dir)
        try:
            build_prompts(prompts_dir, prompts_dir / "build")
        except PromptBuildError as exc:
            raise TestbedError(str(exc)) from None
        install_sounds(prompts_dir / "build", self.dir / "data/sounds")

    def stop(self, keep_logs: Path | None = None) -> None:
        """Stop everything and remove the bed's directory (first copying its logs, if asked)."""
        st = self.state
        if st is None:
            return
        self.stop_engines()
        if st.asterisk_pid and pid_alive(st.asterisk_pid):
            subprocess.run(
                self.runner.command(["/usr/sbin/asterisk", "-C", self.inner("etc/asterisk.conf"), "-rx", "core stop now"], self.dir),
                capture_output=True, timeout=15,
            )
            stop_group(st.asterisk_pid, timeout=5)
        if st.sentinel_ports:
            stop_all(st)
        elif st.redis_pid:
            stop_group(st.redis_pid, timeout=3)
        if self.dns is not None:
            self.dns.stop()
        for proc in (self._engine, self._asterisk, self._redis):
            if proc is not None:
                proc.poll()
        if keep_logs is not None:
            shutil.rmtree(keep_logs, ignore_errors=True)
            keep_logs.mkdir(parents=True)
            for log in [*self.dir.glob("engine*.log"), *self.dir.glob("log/*.log"), *self.dir.glob("log/cdr-custom/*"),
                    *self.dir.glob("redis-*/redis.log"), *self.dir.glob("sentinel-*/sentinel.log")]:
                if log.is_file():
                    grouped = log.parent.name.startswith(("redis-", "sentinel-"))  # one per process
                    shutil.copy2(log, keep_logs / (f"{log.parent.name}-{log.name}" if grouped else log.name))
        shutil.rmtree(self.dir, ignore_errors=True)
        if st.recording_dir:
            shutil.rmtree(st.recording_dir, ignore_errors=True)
        registry_file(st.name).unlink(missing_ok=True)
        self.state = None

    def save(self) -> None:
        assert self.state
        path = registry_file(self.state.name)
        partial = path.with_name(path.name + ".partial")  # others read the registry: replace it whole
        partial.write_text(json.dumps(asdict(self.state), indent=2))
        partial.chmod(0o600)
        os.replace(partial, path)

    @classmethod
    def attach(cls, name: str) -> "TestBed":
        """A handle on a bed started by another process (``ivr testbed down NAME``)."""
        path = registry_file(name)
        if not path.exists():
            raise TestbedError(f"no test bed named {name!r} (see `ivr testbed status`)")
        state = BedState.load(path)
        bed = cls(config_dir=state.config_dir, name=name, runner=state.runner)
        bed.state = state
        return bed
