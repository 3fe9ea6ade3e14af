"""What may be written into a generated Asterisk file, and the checked writer that enforces it.

Asterisk's config files are line-based: a line break in a value starts a new line, which can
open a context (``[from-agents]``) and add extensions that dial anything (issue 17, finding 4).
``;`` starts a comment (a secret or a contact is cut there), and in a dialplan application's
argument ``${...}``/``$[...]`` are evaluated. So:

- the config model types every value that reaches a generated file for that use (:data:`Title`,
  :data:`Host`, :data:`SipUri`, ... here; names and numbers in :mod:`ivr.core.strict`), so an admin's
  file or a console draft is refused with its file and line;
- the renderer (:mod:`ivr.asterisk_conf`) writes every interpolated value through
  :func:`comment`, :func:`value`, :func:`arg`, :func:`word` or :func:`secret`, and first runs
  :func:`guard` over *all* strings of the settings and render options, so a field added later
  that skips the model's types still cannot carry a line break into any file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, SecretStr

from ivr.core.secret_policy import secret_problem

# Unicode categories that never belong in one line of a config file: controls (CR, LF, TAB,
# NUL, U+0085), format characters (bidi overrides, zero-width), line and paragraph separators.
BREAKING = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Special in a dialplan argument or a conf value: comment, variable/expression, escape,
# context brackets, quoting, and braces of ${...}.
SPECIAL = frozenset('$;[]\\{}"|')
WORD = re.compile(r"[A-Za-z0-9_.*#+@:/-]+")
HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
SIP_URI = re.compile(r"sips?:(?:[A-Za-z0-9_.!~*'()&=+%-]+@)?[A-Za-z0-9.:\[\]-]+")


class UnsafeValue(ValueError):
    """A value that would change the structure of a generated file."""


def breaking(text: str) -> str | None:
    """The first character that would break a config line, described; None when there is none."""
    for ch in text:
        if unicodedata.category(ch) in BREAKING:
            return f"control or line-break character U+{ord(ch):04X}"
    return None


def _refuse(text: str, why: str | None, what: str) -> None:
    if why:
        raise UnsafeValue(f"{what} {text[:40]!r}…: {why} is not allowed" if len(text) > 40
                          else f"{what} {text!r}: {why} is not allowed")


def plain_title(text: str) -> str:
    """A title or display name (Mandarin text, written in comments and NoOp()): one line, 1–100
    characters, none of ``$ ; [ ] \\ { } " |``."""
    _refuse(text, breaking(text), "title")
    special = sorted(set(text) & SPECIAL)
    _refuse(text, f"character {''.join(special)!r}" if special else None, "title")
    if not text.strip() or len(text) > 100:
        raise UnsafeValue(f"title {text[:40]!r}: must be 1-100 characters")
    return text


def host(text: str) -> str:
    """A host name or an IPv4/IPv6 address (no port, no brackets)."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(text):
        raise UnsafeValue(f"{text!r} is not a host name or IP address")
    return text


def pjsip_match(text: str) -> str:
    """What a PJSIP identify ``match`` takes here: a host or address, with ``:port`` or ``/prefix``."""
    base, sep, tail = text.rpartition("/") if "/" in text else text.rpartition(":") if text.count(":") == 1 else ("", "", text)
    if not sep:
        return host(text)
    if not tail.isdigit():
        raise UnsafeValue(f"{text!r}: after {sep!r} comes a {'prefix length' if sep == '/' else 'port'}")
    host(base)
    return text


def host_port(text: str) -> str:
    """``host:port`` (an IPv6 address in brackets: ``[::1]:4573``), port 1-65535."""
    base, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UnsafeValue(f"{text!r} is not host:port")
    host(base[1:-1] if base.startswith("[") and base.endswith("]") and ":" in base else base)
    return text


def ip_port(text: str) -> str:
    """``address:port`` with an IP address, never a host name (``[::1]:5060`` for IPv6): what the
    cluster topology names, since nothing on the call path may wait for DNS."""
    host_port(text)
    base = text.rpartition(":")[0]
    try:
        ipaddress.ip_address(base[1:-1] if base.startswith("[") else base)
    except ValueError:
        raise UnsafeValue(f"{text!r}: an IP address, not a host name (no DNS on the call path)") from None
    return text


def split_ip_port(text: str) -> tuple[str, int]:
    """(address without brackets, port) of a checked :func:`ip_port`."""
    base, _, port = ip_port(text).rpartition(":")
    return base.strip("[]"), int(port)


def sip_uri(text: str) -> str:
    """A SIP URI for a ``contact=`` line (no ``;`` parameters: Asterisk reads ``;`` as a comment)."""
    if not SIP_URI.fullmatch(text):
        raise UnsafeValue(f"{text!r} is not a sip: URI this renderer writes (sip:[user@]host[:port], no ';' parameters)")
    return text


Title = Annotated[str, AfterValidator(plain_title)]
Host = Annotated[str, AfterValidator(host)]
PjsipMatch = Annotated[str, AfterValidator(pjsip_match)]
HostPort = Annotated[str, AfterValidator(host_port)]
IpPort = Annotated[str, AfterValidator(ip_port)]
SipUri = Annotated[str, AfterValidator(sip_uri)]
MUSIC_CLASS = r"^[A-Za-z0-9_-]{1,40}$"
FILE_PATH = r"^/[A-Za-z0-9_./-]{1,255}$"

# --- the checked writer --------------------------------------------------------------------


def comment(text: str) -> str:
    """Text after ``;`` on a line of its own: anything but a line break."""
    _refuse(text, breaking(text), "value")
    return text


def value(text: str) -> str:
    """The value of ``key = value`` (pjsip, manager, queues, globals): one line, no ``;``."""
    _refuse(text, breaking(text) or ("';' (a comment)" if ";" in text else None), "value")
    return text


def arg(text: str) -> str:
    """Text in a dialplan application's argument: not evaluated, not split into lines."""
    _refuse(text, breaking(text) or (f"character {''.join(sorted(set(text) & SPECIAL))!r}" if set(text) & SPECIAL else None),
            "dialplan text")
    return text


def file_path(text: str) -> str:
    """An absolute path written into the dialplan, and into the shell command MixMonitor runs
    when a recording ends: letters, digits and ``_ . / -`` only (:data:`FILE_PATH`), no ``..``."""
    if not re.fullmatch(FILE_PATH, text) or "/../" in f"{text}/":
        raise UnsafeValue(f"path {text!r}: an absolute path of letters, digits and _ . / - only")
    return text


def word(text: str) -> str:
    """A context, extension, section, endpoint or queue name."""
    if not WORD.fullmatch(text):
        raise UnsafeValue(f"name {text!r}: only letters, digits and _ . * # + @ : / - may name something in Asterisk")
    return text


ENTITY_ID = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


def entity_id(text: str) -> str:
    """An Asterisk entity id (asterisk.conf ``entityid``): six bytes as a MAC address is written."""
    if not ENTITY_ID.fullmatch(text):
        raise UnsafeValue(f"entity id {text!r}: six hex bytes separated by ':' (as 02:00:5e:10:00:01)")
    return text


def secret(text: str, label: str) -> str:
    """A password or secret: one line, no ``;``, and strong enough (:mod:`ivr.core.secret_policy`)."""
    problem = secret_problem(label, text)
    if problem:
        raise UnsafeValue(problem)
    return value(text)


def line_breaks(*roots: Any) -> list[tuple[str, str]]:
    """(dotted path, why) of every string anywhere in ``roots`` (settings, render options; keys
    of mappings included) that holds a line break or control character."""
    return [(".".join(map(str, path)) or "value", why) for path, text in _strings(roots, ()) if (why := breaking(text))]


def guard(*roots: Any) -> None:
    """UnsafeValue naming the first string in ``roots`` that holds a line break (:func:`line_breaks`)."""
    for path, why in line_breaks(*roots)[:1]:
        raise UnsafeValue(f"{path}: {why} is not allowed in a value written into Asterisk's configuration")


def _strings(node: Any, path: tuple[Any, ...]) -> Any:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, SecretStr):
        yield path, node.get_secret_value()
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _strings(getattr(node, name), path + (name,))
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _strings(getattr(node, f.name), path + (f.name,))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _strings(key, path + (key,))
            yield from _strings(item, path + (key,))
    elif isinstance(node, (list, tuple, set, frozenset)):
        for i, item in enumerate(node):
            yield from _strings(item, path + (i,) if path else ())
