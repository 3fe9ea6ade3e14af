"""The silent resolver of a test bed without DNS: it records what it is asked and answers
nothing; the runners put a bed's own resolv.conf in place of the rootfs's."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from testbed.dns import SilentResolver, parse_query
from testbed.runners import DockerRunner, RootfsRunner

# a query for "vm", type AAAA, as glibc sends it
QUERY = bytes.fromhex("10ec01000001000000000000") + b"\x02vm\x00" + bytes.fromhex("001c0001")


def test_given_a_query_then_its_name_and_type_are_read() -> None:
    assert parse_query(QUERY) == ("vm", "AAAA")
    assert parse_query(b"\0" * 5) == ("?", "?")


def test_given_queries_over_udp_and_tcp_then_both_are_recorded_and_none_answered() -> None:
    resolver = SilentResolver().start()
    try:
        assert f"nameserver {resolver.address}\n" in resolver.resolv_conf()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(0.3)
            udp.sendto(QUERY, (resolver.address, 53))
            try:
                answer: bytes | None = udp.recv(512)
            except TimeoutError:
                answer = None
        with socket.create_connection((resolver.address, 53)) as tcp:
            tcp.sendall(len(QUERY).to_bytes(2, "big") + QUERY)
            deadline = time.monotonic() + 5
            while len(resolver.snapshot()) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert answer is None
        assert [str(q) for q in resolver.snapshot()] == ["AAAA vm (udp)", "AAAA vm (tcp)"]
    finally:
        resolver.stop()


def test_given_a_bed_file_then_both_runners_put_it_over_the_inside_path(tmp_path: Path) -> None:
    own = tmp_path / "bed/resolv.conf"
    rootfs = RootfsRunner(root=tmp_path / "root").command(["asterisk"], tmp_path / "bed", (), {"/etc/resolv.conf": own})
    assert f"mount --bind {own} {tmp_path / 'root/etc/resolv.conf'}" in rootfs[6]
    docker = DockerRunner().command(["asterisk"], tmp_path / "bed", (), {"/etc/resolv.conf": own})
    assert f"{own}:/etc/resolv.conf:ro" in docker
