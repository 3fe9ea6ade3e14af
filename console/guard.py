"""The sign-in guard: budgets counted before any password is checked, and a bounded pool for
the checks themselves.

Every attempt is counted first, atomically, in one Lua call (:data:`RESERVE`), against four
budgets per ``web.login_lockout`` window, before argon2 runs; so 40 parallel guesses get
``web.login_attempts`` checks and 429 for the rest, not 40 checks:

* per user and address (``login_attempts``, 5): the guesser's own lockout;
* per address, any user (``login_address_attempts``): one address spraying many names;
* per user, any address (``login_user_attempts``) and in all (``login_global_attempts``):
  many addresses guessing one name, or everything at once.

The last three could lock a user out for everyone (or a whole office behind one NAT address),
which is what an attacker wants; so an address the user signed in from before (kept 30 days,
:func:`ivr.store.keyspace.console_login_known`) is held only to its own pair budget: staff at their
usual desks still get in while strangers are refused. A
successful sign-in gives its attempt back (only failures use the budgets up) and clears the
pair's count.

The checks run in a small executor of their own (``login_workers`` threads) with at most
``login_queue`` waiting; beyond that a sign-in gets 503 with Retry-After at once, so a flood
of anonymous sign-ins costs a bounded share of the CPU the calls need.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import redis.asyncio as aioredis

from ivr.store import keyspace
from ivr.config import WebSettings

T = TypeVar("T")
KNOWN_DAYS = 30
RETRY_AFTER = 5  # s: the Retry-After of a 503 (checks all busy, no free Redis connection)

# KEYS: pair, address, user, all, known; ARGV: window, the four limits, the address digest.
# Returns "" (go on), "known" (go on, an address the user signed in from) or the budget spent.
RESERVE = """
local function take(key, limit)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  return n <= tonumber(limit)
end
if not take(KEYS[1], ARGV[2]) then return 'pair' end
if redis.call('SISMEMBER', KEYS[5], ARGV[6]) == 1 then return 'known' end
if not take(KEYS[2], ARGV[3]) then return 'address' end
if not take(KEYS[3], ARGV[4]) then return 'user' end
if not take(KEYS[4], ARGV[5]) then return 'all' end
return ''
"""

# KEYS: as RESERVE's; ARGV: "1" if the address was known, the address digest, how long it is kept.
RELEASE = """
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '1' then
  for i = 2, 4 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
  end
end
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('EXPIRE', KEYS[5], ARGV[3])
"""


class Busy(Exception):
    """Too many password checks running and waiting: try again shortly (503)."""


class SignInGuard:
    def __init__(self, redis: aioredis.Redis, web: WebSettings):
        self.redis = redis
        self.web = web
        self._reserve = redis.register_script(RESERVE)
        self._release = redis.register_script(RELEASE)
        self._pool = ThreadPoolExecutor(web.login_workers, thread_name_prefix="sign-in")
        self._capacity = web.login_workers + web.login_queue
        self._pending = 0

    def _keys(self, user: str, address: str) -> list[str]:
        return [keyspace.console_login_fails(user, address), keyspace.console_login_address(address),
                keyspace.console_login_user(user), keyspace.CONSOLE_LOGIN_ALL, keyspace.console_login_known(user)]

    async def reserve(self, user: str, address: str) -> tuple[str, bool]:
        """Count this attempt; (the budget that is spent or "", whether the address is known)."""
        w = self.web
        verdict = str(await self._reserve(keys=self._keys(user, address), args=[
            w.login_lockout, w.login_attempts, w.login_address_attempts, w.login_user_attempts,
            w.login_global_attempts, _digest(address)]))
        return ("", True) if verdict == "known" else (verdict, False)

    async def succeeded(self, user: str, address: str, known: bool) -> None:
        """The attempt was right: give it back to the budgets, clear the pair, remember the address."""
        await self._release(keys=self._keys(user, address), args=["1" if known else "0", _digest(address), KNOWN_DAYS * 86_400])

    async def check(self, verify: Callable[[], T]) -> T:
        """Run one password check in the bounded pool; :class:`Busy` when it is full."""
        if self._pending >= self._capacity:
            raise Busy()
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, verify)
        finally:
            self._pending -= 1


def _digest(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:32]
