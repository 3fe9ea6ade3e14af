"""Grants to fetch one recording file: verified and audited once, then served by range.

A browser's <audio> asks for a long file in many range requests (every seek is one). Auditing
each would flood the log, so the console audits the user's *request* (with its reason) once, after
checking who may play and that the file is the one on the ticket (size and SHA-256), and gives
back a short-lived grant: a random token in Redis (:func:`ivr.store.keyspace.recording_grant`,
only its digest is stored) bound to that user and that session, that ticket, that recording and
that file as it was verified (size, mtime, inode). The <audio> element's URL carries the token;
a range request is answered only for the same user and session, for the same recording, and
only while the file is still the one verified (a cheap ``stat``, no re-hash per range).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import redis.asyncio as aioredis

from ivr.store import keyspace
from recording.store import resolve, state
from tickets.model import Recording

GRANT_SECONDS = 600  # a player page left open longer asks again (a new reason, a new audit line)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
PURPOSES = ("play", "download")


@dataclass(frozen=True)
class FileMark:
    """What a verified file looked like: a later change of any of these means it was touched."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> "FileMark":
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Checked:
    """The outcome of verifying a ticket's recording: ``state`` is ok / missing / altered / deleted / failed."""

    state: str
    path: Path | None = None
    mark: FileMark | None = None


def check(rec: Recording, root: Path) -> Checked:
    """Verify ``rec`` against its ticket (size and SHA-256: reads the whole file, so call it in a
    thread); a file that changes while it is read counts as altered."""
    path = resolve(root, rec.file)
    if rec.deleted or rec.failed or path is None:
        return Checked("deleted" if rec.deleted else "failed" if rec.failed else "missing")
    try:
        before = FileMark.of(path)
        status = state(rec, root)
        after = FileMark.of(path)
    except OSError:
        return Checked("missing")
    if status == "ok" and before != after:
        status = "altered"
    return Checked(status, path if status == "ok" else None, after if status == "ok" else None)


@dataclass(frozen=True)
class Grant:
    user: str
    session: str  # SHA-256 of the session id: a grant copied to another browser is worthless
    number: str  # the ticket
    index: int  # 1-based: the ticket's K-th recording
    file: str  # relative to recording.dir, as on the ticket
    mark: FileMark
    purpose: str  # play / download

    def matches(self, user: str, session_id: str, number: str, index: int) -> bool:
        return (self.user, self.session, self.number, self.index) == (user, session_digest(session_id), number, index)

    def intact(self, root: Path) -> Path | None:
        """The file to serve, or None when it is no longer the one verified (changed, replaced, gone)."""
        path = resolve(root, self.file)
        try:
            return path if path is not None and FileMark.of(path) == self.mark else None
        except OSError:
            return None


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def issue(redis: aioredis.Redis, grant: Grant, seconds: int = GRANT_SECONDS) -> str:
    """Store ``grant`` and return its token (for the URL)."""
    if grant.purpose not in PURPOSES:
        raise ValueError(f"not a purpose: {grant.purpose!r}")
    token = secrets.token_urlsafe(32)
    await redis.set(keyspace.recording_grant(token), json.dumps(asdict(grant)), ex=seconds)
    return token


async def lookup(redis: aioredis.Redis, token: str) -> Grant | None:
    """The grant behind ``token`` (None: malformed, unknown or expired)."""
    if not TOKEN.fullmatch(token):
        return None
    raw = await redis.get(keyspace.recording_grant(token))
    if raw is None:
        return None
    data = json.loads(raw)
    return Grant(**{**data, "mark": FileMark(**data["mark"])})
