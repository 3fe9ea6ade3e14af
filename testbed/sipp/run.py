"""Running sipp: the :class:`Sipp` process handle and one coroutine per kind of peer or call."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Literal

from testbed.sipp.dtmf import Key, dtmf_pcaps
from testbed.sipp.peers import STALE_MARK, PeerMode, agent_scenario, peer_scenario
from testbed.sipp.scenarios import agent_dial_scenario, citizen_scenario, register_scenario


class Sipp:
    """A running sipp process (asyncio)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path, scenario: Path):
        self.proc = proc
        self.log = log
        self.scenario = scenario

    async def wait(self, timeout: float = 60) -> int:
        """Exit code: 0 = every call went as scripted (a peer: its call, and any stale INVITE
        it turned away). Raises TimeoutError with sipp's output if it is still running."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"sipp still running after {timeout} s:\n{self.output()}") from None

    def output(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        errors = sorted(self.scenario.parent.glob(self.scenario.stem + "*errors.log"))
        for e in errors:
            text += "\n--- " + e.name + "\n" + e.read_text(errors="replace")[-3000:]
        return text[-6000:]

    def statistics(self) -> dict[str, int]:
        """sipp's cumulative counters (``SuccessfulCall``, ``FailedCall``, ``OutgoingCall``,
        ``IncomingCall``, ...) from its last statistics line; {} before the first one."""
        path = self.scenario.with_name(self.scenario.stem + ".stat.csv")
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        if len(lines) < 2:
            return {}
        header, last = lines[0].split(";"), lines[-1].split(";")
        return {k.removesuffix("(C)"): int(v) for k, v in zip(header, last) if k.endswith("(C)") and v.strip().isdigit()}

    def turned_away(self) -> int:
        """How many stale INVITEs (another caller's) this peer refused, from its sipp log."""
        logs = self.scenario.parent.glob(self.scenario.stem + "_*_logs.log")
        return sum(p.read_text(errors="replace").count(STALE_MARK) for p in logs)

    async def wait_listening(self, port: int, timeout: float = 10.0) -> None:
        """Until this sipp has bound UDP ``port`` (read from /proc/net/udp, never by binding)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not _udp_bound(port):
            if self.proc.returncode is not None:
                raise RuntimeError(f"sipp exited ({self.proc.returncode}) before listening on {port}:\n{self.output()}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"sipp did not listen on UDP {port} within {timeout} s:\n{self.output()}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def _udp_bound(port: int) -> bool:
    suffix = f":{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1].endswith(suffix) for line in itertools.islice(table, 1, None))


async def _run(workdir: Path, name: str, scenario: str, args: list[str]) -> Sipp:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.xml"
    path.write_text(scenario, encoding="iso-8859-1")
    log = workdir / f"{name}.log"
    out = open(log, "wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(path), "-nostdin", "-trace_err", "-i", "127.0.0.1", "-mi", "127.0.0.1",
            *args, stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            cwd=workdir, start_new_session=True,
        )
    finally:
        out.close()
    return Sipp(proc, log, path)


async def citizen_call(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, dialed: str,
    caller: str = "13800138000", presses: list[Key] | None = None, hold_ms: int = 8000,
    dtmf: Literal["rfc2833", "info"] = "rfc2833", name: str | None = None, announce_media: int | None = None,
    audio: Path | None = None,
) -> Sipp:
    """Place one citizen call into Asterisk from ``local_port`` (matched as the pstn trunk).
    ``announce_media``: the SDP names this port for RTP (a testbed.rtp.ToneLeg), not sipp's own;
    ``audio``: an RTP capture the citizen plays after the keys (their voice)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pcaps = dtmf_pcaps(workdir, presses or []) if dtmf == "rfc2833" else None
    scenario = announced(citizen_scenario(caller, presses or [], hold_ms, dtmf, pcaps, audio=audio), announce_media)
    name = name or f"call-{dialed}-{os.getpid()}-{local_port}-{media_port}"
    return await _run(
        workdir, name, scenario,
        ["-p", str(local_port), "-mp", str(media_port), "-m", "1", "-s", dialed,
         "-timeout", "120s", "-timeout_error", f"127.0.0.1:{sip_port}"],
    )


async def citizen_calls(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, dialed: str, callers: list[str],
    rate: float, presses: list[Key] | None = None, hold_ms: int = 120_000, name: str = "citizens",
    dialed_each: list[str] | None = None, audio: Path | None = None,
) -> Sipp:
    """Many citizens from one sipp on ``local_port``: one call from each number of ``callers``
    (sipp's ``[field0]``), ``rate`` new calls per second, all allowed up at once; each presses
    ``presses`` as :func:`citizen_call` does. ``dialed_each``: the number each of them dials
    (``[field1]``; default ``dialed`` for all); ``audio``: an RTP capture each plays after the
    keys. Per-call results: :meth:`Sipp.statistics`."""
    workdir.mkdir(parents=True, exist_ok=True)
    numbers = workdir / f"{name}.csv"
    lines = [f"{c};{d};" for c, d in zip(callers, dialed_each)] if dialed_each else [f"{c};" for c in callers]
    numbers.write_text("SEQUENTIAL\n" + "".join(f"{line}\n" for line in lines))
    scenario = citizen_scenario("[field0]", presses or [], hold_ms, "rfc2833", dtmf_pcaps(workdir, presses or []),
                                dialed="[field1]" if dialed_each else "[service]", audio=audio)
    return await _run(
        workdir, name, scenario,
        ["-p", str(local_port), "-mp", str(media_port), "-m", str(len(callers)), "-l", str(len(callers)),
         "-r", f"{rate:g}", "-inf", str(numbers), "-s", dialed, "-timeout", f"{hold_ms // 1000 + 120}s",
         "-timeout_error", *_statistics_args(workdir, name), f"127.0.0.1:{sip_port}"],
    )


async def agent_phone(workdir: Path, *, port: int, media_port: int, ring_ms: int = 200, talk_ms: int = 2000,
                      name: str | None = None, scenario: str | None = None, extra: tuple[str, ...] = ()) -> Sipp:
    """A seat's softphone that answers every call (:func:`agent_scenario`, or ``scenario``) until
    stopped; returns once it listens on ``port``. ``extra``: more sipp options."""
    name = name or f"agent-phone-{port}"
    phone = await _run(workdir, name, scenario or agent_scenario(ring_ms, talk_ms),
                       ["-p", str(port), "-mp", str(media_port), *extra, *_statistics_args(workdir, name)])
    try:
        await phone.wait_listening(port)
    except BaseException:
        await phone.stop()
        raise
    return phone


def announced(scenario: str, media_port: int | None) -> str:
    """``scenario`` with its SDP naming ``media_port`` for RTP (None: sipp's own ``-mp`` port)."""
    return scenario if media_port is None else scenario.replace("[media_port]", str(media_port))


def _statistics_args(workdir: Path, name: str) -> list[str]:
    """sipp's counters written to ``<name>.stat.csv`` every second (read by Sipp.statistics)."""
    return ["-trace_stat", "-stf", str(workdir / f"{name}.stat.csv"), "-fd", "1"]


async def sip_peer(
    workdir: Path, *, port: int, media_port: int, caller: str, mode: PeerMode = "answer",
    ring_ms: int = 200, talk_ms: int = 2000, name: str | None = None, refer_to: str = "",
    presses: list[Key] | None = None, also: tuple[str, ...] = (), announce_media: int | None = None,
    audio: Path | None = None,
) -> Sipp:
    """A softphone/gateway on ``port`` that handles the call from ``caller`` in ``mode``
    (``announce_media``: as :func:`citizen_call`).

    Returns once sipp listens on ``port``, so a call placed next cannot find it absent."""
    name = name or f"peer-{port}-{mode}"
    pcaps = dtmf_pcaps(workdir, presses) if presses else None
    peer = await _run(
        workdir, name, announced(peer_scenario(mode, caller, ring_ms, talk_ms, refer_to, presses, pcaps, also, audio),
                                 announce_media),
        ["-p", str(port), "-mp", str(media_port), "-timeout", "120s", "-trace_logs", "-aa"],
    )
    try:
        await peer.wait_listening(port)
    except BaseException:
        await peer.stop()
        raise
    return peer


async def agent_dial(
    workdir: Path, *, sip_port: int, local_port: int, media_port: int, agent: str, secret: str, code: str,
    hold_ms: int = 6000,
) -> Sipp:
    """An agent's softphone, authenticated as ``agent``, dials ``code`` (a feature code)."""
    return await _run(
        workdir, f"agent-{agent}-{local_port}", agent_dial_scenario(agent, hold_ms),
        ["-p", str(local_port), "-mp", str(media_port), "-m", "1", "-s", code, "-au", agent, "-ap", secret,
         "-timeout", "60s", "-timeout_error", f"127.0.0.1:{sip_port}"],
    )


async def register(
    workdir: Path, *, sip_port: int, local_port: int, agent: str, secret: str, contact_port: int, expires: int = 300,
    retries: int = 5,
) -> Sipp:
    """Register (or, ``expires=0``, unregister) ``agent``'s softphone at ``contact_port``; a
    registrar that does not answer fails it after ``retries`` retransmissions (500 ms, doubling)."""
    return await _run(
        workdir, f"register-{agent}-{contact_port}-{expires}", register_scenario(agent, contact_port, expires),
        ["-p", str(local_port), "-m", "1", "-au", agent, "-ap", secret, "-timeout", "30s",
         "-max_non_invite_retrans", str(retries), "-timeout_error", f"127.0.0.1:{sip_port}"],
    )
