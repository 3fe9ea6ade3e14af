"""The cluster bed's SIP proxies: the real Kamailio (Debian's package) running the generated
``kamailio-<proxy>.cfg``, in the foreground, on a loopback port; as root it drops to ``nobody``
once it has read its files and bound its port, as in production it runs unprivileged."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from testbed.processes import log_tail, pid_alive, spawn
from testbed.runners import TestbedError


def kamailio_binary() -> str:
    found = shutil.which("kamailio") or ("/usr/sbin/kamailio" if os.path.exists("/usr/sbin/kamailio") else None)
    if not found:
        raise TestbedError("kamailio is not installed (apt-get install kamailio; ./run installs it)")
    return found


def check_config(cfg: Path) -> None:
    """``kamailio -c``: the generated file parses (the start-up below is what resolves the rest)."""
    done = subprocess.run([kamailio_binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise TestbedError(f"kamailio -c refused {cfg}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def start_proxy(cfg: Path, workdir: Path, port: int, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """Run Kamailio on ``cfg`` (it listens on 127.0.0.1:``port``); returns once it answers OPTIONS."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "kamailio.log"
    user = ["-u", "nobody", "-g", "nogroup"] if os.geteuid() == 0 else []
    proc = spawn([kamailio_binary(), "-DD", "-E", *user, "-f", str(cfg), "-Y", str(workdir), "-w", str(workdir)], log)
    deadline = time.monotonic() + timeout
    while not answers_options(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise TestbedError(f"kamailio on port {port} did not start:\n{log_tail(log, 30)}")
    return proc


def answers_options(port: int, wait: float = 0.5) -> bool:
    """An OPTIONS to the proxy itself gets 200 (the carrier's keepalive)."""
    reply = exchange(port, "OPTIONS", f"sip:127.0.0.1:{port}", wait=wait)
    return reply.startswith("SIP/2.0 200")


def exchange(port: int, method: str, uri: str, headers: str = "", wait: float = 3.0, local_port: int = 0) -> str:
    """Send one request to the SIP server on ``port`` from ``local_port`` (default: a fresh one);
    its first answer to that request ('' when none came within ``wait``). ``headers``: extra
    lines, each ending CRLF."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", local_port))
        s.settimeout(wait)
        own, call_id = s.getsockname()[1], uuid.uuid4().hex
        s.sendto((f"{method} {uri} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{own};branch=z9hG4bK-{call_id};rport\r\nMax-Forwards: 70\r\n"
                  f"From: <sip:stranger@127.0.0.1>;tag={call_id[:8]}\r\n{headers}"
                  + ("" if "To:" in headers else f"To: <{uri}>\r\n")
                  + f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:stranger@127.0.0.1:{own}>\r\n"
                  "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                data = s.recv(65535).decode(errors="replace")
            except OSError:  # timeout, or ICMP port unreachable reported on the socket
                return ""
            if call_id in data and not data.startswith("SIP/2.0 100"):
                return data
    return ""


def stop_proxy(pid: int) -> None:
    """SIGTERM the proxy's process group (its children go with it); SIGKILL what is left."""
    from testbed.processes import stop_group

    if pid and pid_alive(pid):
        stop_group(pid, timeout=5)
