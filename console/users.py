"""Console users and their roles, kept in Redis; passwords only as argon2 hashes.

Users are made by an admin with ``ivr users add`` (never from a file in the repository). An
agent user is bound to one seat of ``config/queues.yaml``: the desk it may open is that seat's.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Literal, get_args

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.store.users import UserRecords
from ivr.core.strict import NAME

Role = Literal["admin", "supervisor", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)
ROLE_LABELS: dict[Role, str] = {"admin": "管理员", "supervisor": "班长", "agent": "座席"}
MIN_PASSWORD = 10  # characters

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that a wrong name costs as long as a wrong
    password; made at the first sign-in, not at import (a hash costs ~0.3 s of CPU, and every
    command and page module that imports this one would pay it)."""
    return _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user that cannot be made as asked (bad name, role, seat or password)."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    agent: str | None  # the seat of an agent user (config/queues.yaml agents:)
    password_hash: str
    created: str = ""
    created_by: str = ""

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def stamp(self) -> str:
        """Changes with the password (a new salt each time it is set, also when a removed user
        is made again), the role and the seat: a session holds the stamp it signed in with."""
        return hashlib.sha256(f"{self.password_hash}\0{self.role}\0{self.agent}".encode()).hexdigest()[:32]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """True if ``password`` is the user's; as slow for an unknown user as for a known one (the
    dummy hash is made before either is told apart, so the first call is as slow for both)."""
    dummy = _dummy_hash()
    try:
        return _hasher.verify(user.password_hash if user else dummy, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def check_user(name: str, role: str, agent: str | None, agents: set[str]) -> None:
    """UserError unless ``name``/``role``/``agent`` make a valid user against the configured seats."""
    if not re.match(NAME, name):
        raise UserError(f"user name {name!r} must match {NAME}")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "agent" and not agent:
        raise UserError("an agent user needs --agent SEAT (its seat in config/queues.yaml)")
    if role != "agent" and agent:
        raise UserError("only an agent user is bound to a seat")
    if agent and agent not in agents:
        raise UserError(f"seat {agent!r} is not an agent in config/queues.yaml (there: {', '.join(sorted(agents))})")


class UserStore:
    """The users' records (:class:`ivr.store.users.UserRecords`, Redis) as :class:`User`; a new
    user's password is hashed here, never stored in clear."""

    def __init__(self, redis: aioredis.Redis):
        self.records = UserRecords(redis)

    async def save(self, user: User) -> None:
        await self.records.save(user.name, asdict(user))

    async def add(self, name: str, role: Role, password: str, *, agent: str | None, by: str) -> User:
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        user = User(name, role, agent, hash_password(password), created=at, created_by=by)
        await self.save(user)
        return user

    async def get(self, name: str) -> User | None:
        record = await self.records.get(name)
        return User(**record) if record else None

    async def all(self) -> list[User]:
        return sorted((User(**r) for r in await self.records.all()), key=lambda u: (ROLES.index(u.role), u.name))

    async def remove(self, name: str) -> bool:
        return await self.records.remove(name)

    async def changed(self, name: str) -> None:
        await self.records.changed(name)
