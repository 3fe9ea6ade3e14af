"""A small client for Kamailio's RPC over the ``ctl`` module's BINRPC (a unix socket the generated
proxy config opens: ivr/asterisk_conf/kamctl.py). ``ivr cluster status`` reads each proxy's view
of the nodes (``dispatcher.list``); ``ivr reload --asterisk`` reloads it (``dispatcher.reload``) and
brings the seats' keys level (``htable.dump``, ``htable.sets``, ``htable.delete``: ivr/cluster_seat_keys.py).

BINRPC (Kamailio's ``src/modules/ctl/binrpc.h``): a packet is a header, then records. Header: one
byte magic ``0xA`` and version ``1``; one byte with the packet type in the high nibble (0 request,
1 reply, 3 fault), the length's size - 1 and the cookie's size - 1 in the low bits; the body
length and the cookie, big-endian. A record: one byte ``flag(1) size(3) type(4)``: with the flag
clear ``size`` is the value's length, with it set ``size`` is the length of a big-endian length
that follows. Types: 0 int (big-endian, signed when 4 bytes), 1 string (NUL-terminated), 2 double
(an int of thousandths; a number's flag is the fourth bit of its size, so 8 bytes is flag 1,
size 0: usrloc's ``Q``), 3 struct (name/value pairs, each name an AVP record, type 5), 4 array,
6 bytes; a struct or array ends with a record of its type whose flag is set and size is 0.

Everything a proxy sends is read within bounds: the body is capped, nesting is capped, and a
malformed packet is a :class:`KamRpcError`, never an exception from deep inside.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

MAGIC_VERSION = 0xA1
REQUEST, REPLY, FAULT = 0, 1, 3
T_INT, T_STR, T_DOUBLE, T_STRUCT, T_ARRAY, T_AVP, T_BYTES = 0, 1, 2, 3, 4, 5, 6
MAX_BODY = 1 << 20  # a dispatcher list of a few nodes is a few kB
MAX_DEPTH = 16
TIMEOUT_S = 2.0


class KamRpcError(Exception):
    """The proxy did not answer, answered a fault, or sent something that is not BINRPC."""


class _End:
    """The record that closes a struct or array."""

    def __init__(self, kind: int):
        self.kind = kind


def encode_request(method: str, *params: str | int, cookie: int) -> bytes:
    """A request packet calling ``method`` with ``params`` (strings and ints)."""
    body = b"".join(_record(v) for v in (method, *params))
    length = _be(len(body)) or b"\0"
    cookie_bytes = cookie.to_bytes(4, "big")
    return bytes([MAGIC_VERSION, (REQUEST << 4) | ((len(length) - 1) << 2) | (len(cookie_bytes) - 1)]) \
        + length + cookie_bytes + body


def _record(v: str | int) -> bytes:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise TypeError(f"BINRPC parameter {v!r}: only str and int")
    if isinstance(v, int):
        if not -(1 << 31) <= v < (1 << 31):
            raise ValueError(f"BINRPC int {v} does not fit 32 bits")
        value, kind = (_be(v & 0xFFFFFFFF) if v < 0 else _be(v)), T_INT
    else:
        if "\0" in v:
            raise ValueError("a BINRPC string cannot hold NUL")
        value, kind = v.encode() + b"\0", T_STR
    if len(value) < 8:
        return bytes([(len(value) << 4) | kind]) + value
    size = _be(len(value))
    return bytes([0x80 | (len(size) << 4) | kind]) + size + value


def _be(n: int) -> bytes:
    """``n`` big-endian in as few bytes as it takes (none for 0)."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def parse_header(head: bytes) -> tuple[int, int, int, int]:
    """(packet type, body length, cookie, header size) from the packet's first bytes (at least 2)."""
    if len(head) < 2 or head[0] != MAGIC_VERSION:
        raise KamRpcError(f"not a BINRPC v1 packet (starts {head[:2].hex()})")
    kind, len_size, cookie_size = head[1] >> 4, ((head[1] >> 2) & 3) + 1, (head[1] & 3) + 1
    size = 2 + len_size + cookie_size
    if len(head) < size:
        raise KamRpcError("BINRPC header cut short")
    body_len = int.from_bytes(head[2:2 + len_size], "big")
    if body_len > MAX_BODY:
        raise KamRpcError(f"BINRPC body of {body_len} bytes is above the {MAX_BODY} accepted")
    return kind, body_len, int.from_bytes(head[2 + len_size:size], "big"), size


def decode_body(body: bytes) -> list[Any]:
    """The records of a reply body as Python values: int, float, str, bytes, list, and dict for a
    struct (a name that repeats, as ``DEST`` in ``dispatcher.list``, collects its values in a list)."""
    out: list[Any] = []
    pos = 0
    while pos < len(body):
        value, pos = _read(body, pos, 0)
        if isinstance(value, _End):
            raise KamRpcError("BINRPC: a struct or array end outside one")
        out.append(value)
    return out


def _read(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise KamRpcError(f"BINRPC nesting deeper than {MAX_DEPTH}")
    if pos >= len(buf):
        raise KamRpcError("BINRPC record cut short")
    head, pos = buf[pos], pos + 1
    flag, size, kind = head >> 7, (head >> 4) & 7, head & 0xF
    if kind in (T_STRUCT, T_ARRAY):
        if flag:
            return _End(kind), pos  # the end mark (size 0)
        return _container(buf, pos, depth + 1, kind)
    if kind in (T_INT, T_DOUBLE):
        size = (flag << 3) | size  # a number's flag is its size's fourth bit (8 bytes: a 64-bit value)
    elif flag:
        if pos + size > len(buf):
            raise KamRpcError("BINRPC record length cut short")
        size, pos = int.from_bytes(buf[pos:pos + size], "big"), pos + size
    if pos + size > len(buf):
        raise KamRpcError("BINRPC record value cut short")
    raw, pos = buf[pos:pos + size], pos + size
    if kind in (T_INT, T_DOUBLE):
        n = int.from_bytes(raw, "big", signed=size in (4, 8))
        return (n if kind == T_INT else n / 1000), pos
    if kind in (T_STR, T_AVP):
        return raw.rstrip(b"\0").decode("utf-8", errors="replace"), pos
    if kind == T_BYTES:
        return bytes(raw), pos
    raise KamRpcError(f"BINRPC record of unknown type {kind}")


def _container(buf: bytes, pos: int, depth: int, kind: int) -> tuple[Any, int]:
    """A struct (name/value pairs: a dict) or an array (a list), up to its end mark."""
    items: list[Any] = []
    while True:
        value, pos = _read(buf, pos, depth)
        if isinstance(value, _End):
            if value.kind != kind:
                raise KamRpcError("BINRPC: a struct and an array end each other")
            break
        items.append(value)
    if kind == T_ARRAY or (items and all(isinstance(item, dict) for item in items)):
        # ctl writes an array inside a struct (``htable.dump``'s ``slot``) as a struct of bare structs
        return items, pos
    if len(items) % 2 or not all(isinstance(name, str) for name in items[::2]):
        raise KamRpcError("BINRPC: a struct member without a name or a value")
    out: dict[str, Any] = {}
    repeated: set[str] = set()  # names whose values are collected in a list
    for name, value in zip(items[::2], items[1::2]):
        if name in repeated:
            out[name].append(value)
        elif name in out:  # a name that repeats (DEST, DEST, ...): its values become a list
            out[name] = [out[name], value]
            repeated.add(name)
        else:
            out[name] = value
    return out, pos


def decode_reply(packet: bytes, cookie: int) -> list[Any]:
    """The values of a whole reply packet to the request with ``cookie``; a fault is raised."""
    kind, body_len, got, size = parse_header(packet)
    if got != cookie:
        raise KamRpcError("BINRPC reply to another request (cookie differs)")
    body = packet[size:size + body_len]
    if len(body) != body_len:
        raise KamRpcError("BINRPC body cut short")
    values = decode_body(body)
    if kind == FAULT:
        raise KamRpcError("Kamailio refused: " + " ".join(str(v) for v in values))
    if kind != REPLY:
        raise KamRpcError(f"BINRPC packet type {kind} is not a reply")
    return values


async def call(socket_path: str, method: str, *params: str | int, timeout: float = TIMEOUT_S) -> list[Any]:
    """Call ``method`` on the Kamailio whose ctl socket is ``socket_path``; its reply's values."""
    cookie = secrets.randbits(32)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            try:
                writer.write(encode_request(method, *params, cookie=cookie))
                await writer.drain()
                head = await reader.readexactly(2)
                rest = await reader.readexactly(((head[1] >> 2) & 3) + 1 + (head[1] & 3) + 1)
                _kind, body_len, _cookie, _size = parse_header(head + rest)
                body = await reader.readexactly(body_len)
            finally:
                writer.close()
    except TimeoutError:
        raise KamRpcError(f"no answer on {socket_path} within {timeout:g} s") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise KamRpcError(f"{socket_path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from None
    return decode_reply(head + rest + body, cookie)
