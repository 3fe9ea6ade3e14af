"""The checked writer for Kamailio's files (``kamailio-<proxy>.cfg``, ``dispatcher.list``).

Kamailio's config is a small language: ``#`` starts a comment but ``#!`` a preprocessor directive
(``#!define``, ``#!include_file``), ``;`` ends a statement, ``"`` ends a string, and a line break
starts a new statement. In ``dispatcher.list`` a destination's attributes are separated by ``;``.
So every value is written by type, from a value rebuilt after parsing rather than copied:
addresses from :mod:`ipaddress`, numbers from ``int``, names and paths from a closed alphabet.
"""

from __future__ import annotations

import ipaddress
import re

from ivr.core.conftext import UnsafeValue, split_ip_port

KAM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
KAM_GROUP = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
KAM_PATH = re.compile(r"/[A-Za-z0-9_./-]{1,255}")


def name(text: str) -> str:
    """A proxy or node name (a comment, a ``duid``, part of a file name)."""
    if not KAM_NAME.fullmatch(text):
        raise UnsafeValue(f"name {text!r}: only a-z, 0-9, _ and - (starting with a letter) may name a proxy or node")
    return text


def group(text: str) -> str:
    """A Unix group name (the control socket's group): Debian's ``adduser`` alphabet."""
    if not KAM_GROUP.fullmatch(text):
        raise UnsafeValue(f"group {text!r}: only a-z, 0-9, _ and - (starting with a letter or _), at most 32")
    return text


def integer(n: object, low: int, high: int) -> str:
    """An integer within [low, high], written by ``int``."""
    if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
        raise UnsafeValue(f"{n!r} is not an integer from {low} to {high}")
    return str(n)


def address(text: str) -> str:
    """An IP address as Kamailio writes it in a socket or URI (IPv6 in brackets)."""
    try:
        ip = ipaddress.ip_address(text.strip("[]") if text.startswith("[") else text)
    except ValueError:
        raise UnsafeValue(f"{text!r} is not an IP address") from None
    return f"[{ip}]" if ip.version == 6 else str(ip)


def socket(text: str) -> str:
    """``address:port`` of a checked :func:`~ivr.core.conftext.ip_port`, rebuilt."""
    host, port = split_ip_port(text)
    return f"{address(host)}:{integer(port, 1, 65535)}"


def network(text: str) -> str:
    """An IP address or network for a ``src_ip ==`` test (``/prefix`` always written)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise UnsafeValue(f"{text!r} is not an IP address or network") from None
    return f"{address(str(net.network_address))}/{net.prefixlen}"


def path(text: str) -> str:
    """An absolute file path inside a quoted string."""
    if not KAM_PATH.fullmatch(text) or "/../" in f"{text}/":
        raise UnsafeValue(f"{text!r} is not an absolute path of letters, digits and _ . / -")
    return f'"{text}"'
