"""SIP over plain UDP sockets, for tests whose peers of a proxy are sockets (an Asterisk node, a
phone, a stranger): the requests they send, the answers they wait for (answering OPTIONS probes
meanwhile), and digest credentials computed as a phone does (RFC 2617, qop=auth)."""

from __future__ import annotations

import hashlib
import re
import select
import socket
import time
import uuid
from dataclasses import dataclass, field

from testbed.sipp.seat import ok

WAIT_S = 20.0  # upper bound on any one wait; each returns as soon as its message arrives


@dataclass
class Sent:
    """A request this test sent, for the requests of its dialog."""

    sock: socket.socket
    call_id: str
    uri: str
    answers: list[str] = field(default_factory=list)



def request(method: str, uri: str, sock: socket.socket, call_id: str, cseq: int, *, to: str, to_tag: str = "",
             extra: str = "", user: str = "12345", contact_port: int | None = None) -> str:
    host, port = sock.getsockname()
    port = contact_port or port
    return (f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{sock.getsockname()[1]};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@{host}:{port}>;tag=node\r\nTo: <{to}>{to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{user}@{host}:{port}>\r\n{extra}"
            "Content-Length: 0\r\n\r\n")


def header(message: str, name: str) -> list[str]:
    head = message.split("\r\n\r\n")[0].split("\r\n")
    return [line.split(":", 1)[1].strip() for line in head if line.lower().startswith(name.lower() + ":")]


def status(message: str) -> int:
    return int(message.split(" ", 2)[1])


def final(sent: Sent, timeout: float = WAIT_S) -> str:
    """The final response to ``sent``'s request (provisional ones kept in ``sent.answers``); the
    node answers the dispatcher's OPTIONS probes meanwhile, so it stays up."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sent.sock], [], [], left)[0]:
            break
        data, peer = sent.sock.recvfrom(65535)
        text = data.decode()
        if text.startswith("OPTIONS "):
            sent.sock.sendto(ok(text).encode(), peer)
        elif text.startswith("SIP/2.0 ") and header(text, "Call-ID") == [sent.call_id]:
            sent.answers.append(text)
            if status(text) >= 200:
                return text
    raise AssertionError(f"no final answer to {sent.call_id} within {timeout} s")



def credentials(challenge: str, method: str, uri: str, user: str, password_ha1: str) -> str:
    """The Authorization (answering a 401) or Proxy-Authorization (a 407) line for ``challenge``."""
    www = status(challenge) == 401
    fields = dict(re.findall(r'(\w+)="([^"]*)"', header(challenge, "WWW-Authenticate" if www else "Proxy-Authenticate")[0]))
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{password_ha1}:{fields['nonce']}:00000001:c0ffee:auth:{ha2}".encode()).hexdigest()
    return (f'{"Authorization" if www else "Proxy-Authorization"}: Digest username="{user}", realm="{fields["realm"]}", '
            f'nonce="{fields["nonce"]}", uri="{uri}", response="{response}", qop=auth, nc=00000001, cnonce="c0ffee", '
            "algorithm=MD5\r\n")



def register_status(port: int, user: str, password: str) -> int:
    """The final answer to a REGISTER at 127.0.0.1:``port`` (Asterisk's UDP transport) answered
    with ``user``'s digest credentials for ``password``: 200 if Asterisk takes the password, 401
    if not. It unregisters a contact nobody has (Expires: 0), so no registration changes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        uri, aor, call_id = f"sip:127.0.0.1:{port}", f"sip:{user}@127.0.0.1:{port}", f"reg-{uuid.uuid4().hex}"
        sock.sendto(request("REGISTER", uri, sock, call_id, 1, to=aor, user=user, extra="Expires: 0\r\n").encode(),
                    ("127.0.0.1", port))
        challenge = final(Sent(sock, call_id, aor))
        if status(challenge) != 401:
            return status(challenge)
        realm = re.findall(r'realm="([^"]*)"', header(challenge, "WWW-Authenticate")[0])[0]
        ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
        sock.sendto(request("REGISTER", uri, sock, call_id, 2, to=aor, user=user,
                            extra="Expires: 0\r\n" + credentials(challenge, "REGISTER", uri, user, ha1)).encode(),
                    ("127.0.0.1", port))
        return status(final(Sent(sock, call_id, aor)))


def next_request(sock: socket.socket) -> str:
    """The next request (not an OPTIONS probe) at ``sock``, within WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
        data, peer = sock.recvfrom(65535)
        text = data.decode()
        if text.startswith("OPTIONS "):
            sock.sendto(ok(text).encode(), peer)
        elif not text.startswith("SIP/2.0 "):
            return text
    raise AssertionError(f"no request within {WAIT_S} s")
