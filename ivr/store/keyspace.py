"""The Redis key schema: every key the project reads or writes is named here, and only here.

Stores, the call tracker, the ticket repository, push delivery, the test bed and the tests
all build their keys with these functions, so a key's shape can change in one place.

Calls (the IVR's own record of each call):
  ``ivr:call:<unique_id>``            JSON call record (path, keys, route)
  ``ivr:calls``                       stream of call records in arrival order
  ``ivr:engine:<host:port:pid>``      hash: the flow version live in that engine (ivr/core/identity.py)

Tickets (one per call, by Asterisk's ``linkedid``; all expire after the retention):
  ``ivr:ticket:<linkedid>``           hash: ``number``, ``doc`` (JSON), ``rev``, ``agent``, ``phase:<name>``
  ``ivr:ticket-no:<digits>``          the linkedid of a ticket number (as keyed: digits only)
  ``ivr:ticket-seq:<yyyymmdd>:<line>`` the day's sequence per dialed line (numbers)
  ``ivr:tickets:by-time``             sorted set: linkedid by time received
  ``ivr:tickets:open-by-due``         sorted set: open cases' linkedids by deadline (overdue: score < now)
  ``ivr:tickets:closed-on-time``      hash: ``on_time`` / ``late`` closings (the KPI share)
  ``ivr:tickets:caller:<digest>``     sorted set: a caller's tickets by time (repeat callers);
                                      the caller number only as a digest, never in a key name
  ``ivr:tickets:agent:<agent>``      sorted set: the tickets an agent's seat answered, by time
                                      received (the agent's own list and export read only these)
  ``ivr:tickets:agent-index``         "1" once the tickets written before that index existed joined it
  ``ivr:ticket-events``               stream of ticket events (opened, closed, …) for push
  ``ivr:tickets:lock:<linkedid>``     a console changing that closed ticket (a write-back, a quality
                                      score: tickets/lock.py; seconds)

Reports (reports/tallies.py; counts only, no personal data; kept the tickets' retention):
  ``ivr:report:changes:<yyyymmdd>``   counter: the stored docs of tickets received that local
                                      day changed this many times (INCR by the ticket script when
                                      a doc wins): a day tally counted at another value is stale
  ``ivr:report:tally:<yyyymmdd>``     JSON: that day's counts per view (reports/tallies.py; today's
                                      too), the ``changes`` value it was counted at; expires when
                                      the day's first tickets do. While a process counts the day:
                                      ``{"counting": <token>}`` for at most 15 minutes
  ``ivr:report:before:<yyyymmdd>``    hash: linkedid → the doc a ticket had when the day's tally
                                      was kept ('' for one new since), written by the ticket script
                                      at its first change after the tally: a stale tally is brought
                                      up to date from these, not counted again; expires with the tally

Department write-back (tickets/writeback.py; by department and event id, kept the retention):
  ``ivr:dept:event:<dept>:<id>``      JSON: body digest, the answer given (idempotent repeats)
  ``ivr:dept:refused-peer:<digest>``  refusals from one address this minute (a flood gets 429)
  ``ivr:dept:refused`` / ``ivr:dept:applied``  hashes of counters for /metrics

Push to departments (consumer group ``push:<endpoint>`` on the ticket event stream, one per
endpoint, created at id 0 so each endpoint gets every event still in the stream):
  ``ivr:push:done:<endpoint>``        sorted set: event id scored by when it was delivered;
                                      trimmed to the retention
  ``ivr:push:tries:<endpoint>``       hash: event id → failed attempts so far
  ``ivr:push:dead:<endpoint>``        list: JSON of events parked after the last try, with the
                                      last error (dead letters; no caller number in them)

Call tracking:
  ``ivr:tracking:cdr:<asterisk>``     hash: how far that Asterisk's CDR file has been read

Leases (ivr/store/lease.py; one engine per Asterisk and duty: follow, hours, retention):
  ``ivr:lease:<duty>:<asterisk>``     "<token> <engine identity>" of the holder; PX = the lease's TTL
  ``ivr:lease-token:<duty>:<asterisk>`` counter: the last fencing token given out (INCR, no TTL);
                                      a ticket write under an older token is refused

Queued callbacks (ivr/callback.py):
  ``ivr:callbacks``                   hash: linkedid → JSON of its callback request (number, queue,
                                      place, attempts); removed once answered or given up
  ``ivr:callback:number:<digest>``    the linkedid of the number's pending callback (one per number)
  ``ivr:callback:claim:<linkedid>:<n>`` the engine placing attempt n (one engine per attempt)

Seats (rebuilt from Asterisk's QueueStatus after every reconnect; no personal data):
  ``ivr:seats``                       hash: agent → JSON of its seat (queues, pause, device state)
  ``ivr:seats:changed``               pub/sub channel: the agent whose seat just changed
  ``ivr:seats:node:<asterisk>``       hash: agent → JSON of its seat on that node alone (its
                                      follower's view; expires unless rewritten); ``ivr:seats``
                                      is composed from every node's (which node it talks on)
  ``ivr:seats:nodes``                 set: the nodes whose views ``ivr:seats`` is composed from
  ``ivr:seats:wish``                  hash: agent → JSON of its seat wish (queues/wish.py: log-in,
                                      pause, wrap-up, ``seq``); what every node's applier applies
  ``ivr:seats:wish:changed``          pub/sub channel: the agent whose wish just changed

Live wallboard and agent desk (queues/follower.py writes them from AMI; the console reads them):
  ``ivr:queue:waiting``               hash: linkedid → JSON of a caller waiting in a queue now
                                      (queue, line, joined, the Asterisk); rebuilt from
                                      QueueStatus after every login; no caller number
  ``ivr:live:changed``                pub/sub channel: waiting callers or service-level counts
                                      changed (``waiting`` / ``kpi``): wallboards recompute
  ``ivr:desk:<agent>``                JSON: the call offered to / taken by that agent now (its
                                      ticket stub, caller masked); expires after a few hours
  ``ivr:desk:changed``                pub/sub channel: the agent whose desk just changed
  ``ivr:desk:amends``                 stream: what agents set on tickets from the desk (type,
                                      department, notes), for the engine that follows the call

Service level (queues/kpi.py; counters only, no personal data):
  ``ivr:kpi:<scope>:<name>:<bucket>`` hash: the counters of one queue (scope ``queue``),
                                      dialed line (``line``) or agent (``agent``: the
                                      satisfaction survey's only) in one bucket: ``yyyymmddHHMM``
                                      (5 minutes, kept 3 days) or ``yyyymmdd`` (a day, kept
                                      ``tickets.kpi_retention_days``); expire by EXPIREAT
  ``ivr:kpi:dimensions``              set: ``queue:<name>`` / ``line:<number>`` / ``agent:<seat>`` that ever counted

Priorities (适老化):
  ``ivr:elderly``                     hash: caller digest → JSON (when and by whom it was added);
                                      registered elderly numbers, only as digests; no TTL (an
                                      admin-kept register: entries leave with ``ivr elderly remove``)

Engines (ivr/store/engines.py; several per node, docs/cluster.md): an engine's status hash
``ivr:engine:<host:port:pid>`` (above) also holds its last reload and errors, the announcement it
handled, a heartbeat and its leases, and expires unless the heartbeat renews it.
  ``ivr:engines``                     sorted set: engine identity scored by its last heartbeat
                                      (``ivr reload --status`` lists the live ones)
  ``ivr:config:seq``                  counter: the last config announcement's number
  ``ivr:config:wanted``               hash: the announced config (``seq``, ``version``, ``origin``,
                                      ``at``): the version every engine should run; an engine
                                      that was down reads it when it starts
  ``ivr:config:announce``             pub/sub channel: the number of an announcement just made

Web console (console/; users are made with ``ivr users``, sessions expire by TTL):
  ``ivr:console:users``               hash: user name → JSON (role, bound agent, argon2 hash)
  ``ivr:console:session:<digest>``    hash: ``user``, ``csrf``, ``started``, ``stamp`` (the
                                      user's at sign-in); TTL = the idle timeout, renewed on use;
                                      the session id only as a SHA-256 digest (a Redis dump holds
                                      no usable cookie)
  ``ivr:console:login-fails:<digest>`` sign-in attempts of one user from one address (counter,
                                      TTL = the lockout window); user and address only as a digest
  ``ivr:console:login-address:<d>``,  attempts per address, per user, and in all (counters, TTL
  ``ivr:console:login-user:<d>``,     = the lockout window; console/guard.py)
  ``ivr:console:login-all``
  ``ivr:console:login-known:<d>``     set: digests of the addresses a user signed in from (30 days)
  ``ivr:console:users:changed``       pub/sub: a user's name when it changed, was removed or signed
                                      out (its open event streams end)
  ``ivr:recording:disk``              hash: the recordings disk's total, free (bytes), alarm (0/1) and
                                      when it was measured, from the recording worker (recording/worker.py)
  ``ivr:recording:purged-until``      epoch s: recording retention has deleted what was received before
  ``ivr:recording:grant:<digest>``    JSON: a console user's grant to fetch one recording file (who,
                                      which session's digest, ticket, index, the file as verified,
                                      play/download); TTL ~10 min (recording/grants.py); the token
                                      only as a SHA-256 digest, like a session

Caller digests (:func:`caller_digest`) are keyed: HMAC-SHA256 under the caller key from the
environment (``IVR_CALLER_KEY``). A copy of Redis without that key cannot be turned back into
numbers by hashing every phone number (there are only about 10^10 of them).
"""

from __future__ import annotations

import hashlib
import hmac

CALL_STREAM = "ivr:calls"
SEATS = "ivr:seats"
CALLBACKS = "ivr:callbacks"
SEATS_CHANGED = "ivr:seats:changed"
SEAT_WISHES = "ivr:seats:wish"
SEAT_NODES = "ivr:seats:nodes"
SEAT_WISH_CHANGED = "ivr:seats:wish:changed"
TICKET_EVENTS = "ivr:ticket-events"
TICKETS_BY_TIME = "ivr:tickets:by-time"
TICKETS_OPEN_BY_DUE = "ivr:tickets:open-by-due"  # sorted set: open cases (not 办结) by deadline (epoch s): 超期 counts
TICKETS_CLOSED_ON_TIME = "ivr:tickets:closed-on-time"  # hash: on_time / late → cases closed by a department write-back
AGENT_INDEX_BUILT = "ivr:tickets:agent-index"
NO_CALLER_TICKETS = "ivr:tickets:caller:none"  # calls without a caller number (and queue-visit writes)
TICKET_NUMBER_PREFIX = "ivr:ticket-no:"
KPI_DIMENSIONS = "ivr:kpi:dimensions"
ELDERLY = "ivr:elderly"
QUEUE_WAITING = "ivr:queue:waiting"
LIVE_CHANGED = "ivr:live:changed"
DESK_CHANGED = "ivr:desk:changed"
DESK_AMENDS = "ivr:desk:amends"
CONSOLE_USERS = "ivr:console:users"
ENGINES = "ivr:engines"
CONFIG_SEQ = "ivr:config:seq"
CONFIG_WANTED = "ivr:config:wanted"
CONFIG_ANNOUNCE = "ivr:config:announce"
RECORDING_DISK = "ivr:recording:disk"
TRUNKS = "ivr:trunks"  # "<asterisk>|<trunk>" → JSON: is its gateway answering OPTIONS (transfer/trunk_watch.py)
RECORDING_PURGED = "ivr:recording:purged-until"


def recording_grant(token: str) -> str:
    """A playback grant by the SHA-256 of its token (the URL's; the token itself is never stored)."""
    return "ivr:recording:grant:" + hashlib.sha256(token.encode()).hexdigest()


def call(unique_id: str) -> str:
    return f"ivr:call:{unique_id}"


def engine(name: str) -> str:
    return f"ivr:engine:{name}"


def ticket(linkedid: str) -> str:
    return f"ivr:ticket:{linkedid}"


def ticket_number(number: str) -> str:
    """By the number's digits: ``20261201-12345-00017`` and ``20261201123450017`` are one key."""
    return TICKET_NUMBER_PREFIX + number.replace("-", "")


def report_changes(day: str) -> str:
    """``day`` as ``yyyymmdd`` (the local day a ticket was received): its tickets' change counter."""
    return f"ivr:report:changes:{day}"


def report_tally(day: str) -> str:
    """``day`` as ``yyyymmdd``: the counted report of that local day (or a count's placeholder)."""
    return f"ivr:report:tally:{day}"


def report_before(day: str) -> str:
    """``day`` as ``yyyymmdd``: the docs its changed tickets had when its tally was kept."""
    return f"ivr:report:before:{day}"


def ticket_sequence(day: str, line: str) -> str:
    """``day`` as ``yyyymmdd``: numbers restart each day, per dialed line."""
    return f"ivr:ticket-seq:{day}:{line}"


def caller_digest(caller: str, key: bytes) -> str:
    """A caller number as it may appear in Redis (SCAN, MONITOR, slow logs and dumps show keys):
    keyed, so that only a holder of ``key`` can tell whose number it is."""
    return hmac.new(key, f"ivr12345-caller:{caller}".encode(), hashlib.sha256).hexdigest()[:32]


def agent_tickets(agent: str) -> str:
    """``agent`` '' names no index: the ticket write skips it (a call no agent answered)."""
    return f"ivr:tickets:agent:{agent}"


def caller_tickets(caller: str, key: bytes) -> str:
    return f"ivr:tickets:caller:{caller_digest(caller, key)}"


def push_group(endpoint: str) -> str:
    """The consumer group of one webhook endpoint on :data:`TICKET_EVENTS`."""
    return f"push:{endpoint}"


def push_done(endpoint: str) -> str:
    return f"ivr:push:done:{endpoint}"


def push_tries(endpoint: str) -> str:
    return f"ivr:push:tries:{endpoint}"


def push_dead(endpoint: str) -> str:
    return f"ivr:push:dead:{endpoint}"


DEPT_REFUSED = "ivr:dept:refused"  # hash: "<department>|<reason>" → write-backs refused (/metrics)
DEPT_APPLIED = "ivr:dept:applied"  # hash: "<department>|<event>" → write-backs applied (/metrics)


def dept_event(department: str, event_id: str) -> str:
    """A department's write-back by its own event id: its body digest and the answer given
    (idempotency across consoles); ``event_id`` is validated (tickets.workflow.EVENT_ID)."""
    return f"ivr:dept:event:{department}:{event_id}"


def dept_refused_peer(address: str) -> str:
    """Write-backs refused from one client address this minute (a flood is cut, not audited line by line)."""
    return "ivr:dept:refused-peer:" + hashlib.sha256(address.encode()).hexdigest()[:32]


def ticket_lock(linkedid: str) -> str:
    """Held while one console changes the stored ticket (read, change, write): tickets/lock.py."""
    return f"ivr:tickets:lock:{linkedid}"


def cdr_progress(asterisk: str) -> str:
    return f"ivr:tracking:cdr:{asterisk}"


def lease(duty: str, asterisk: str) -> str:
    return f"ivr:lease:{duty}:{asterisk}"


def lease_token(duty: str, asterisk: str) -> str:
    """The fencing counter of one lease: only ever grows, so a later holder's token is larger."""
    return f"ivr:lease-token:{duty}:{asterisk}"


def kpi_bucket(scope: str, name: str, bucket: str) -> str:
    return f"ivr:kpi:{scope}:{name}:{bucket}"


def callback_number(digest: str) -> str:
    return f"ivr:callback:number:{digest}"


def callback_claim(linkedid: str, attempt: str) -> str:
    return f"ivr:callback:claim:{linkedid}:{attempt}"


def desk(agent: str) -> str:
    return f"ivr:desk:{agent}"


def console_session(session_id: str) -> str:
    """A console session by the SHA-256 of its cookie value (the cookie itself is never stored)."""
    return "ivr:console:session:" + hashlib.sha256(session_id.encode()).hexdigest()


def console_login_fails(user: str, address: str) -> str:
    digest = hashlib.sha256(f"{user}\0{address}".encode()).hexdigest()[:32]
    return f"ivr:console:login-fails:{digest}"


def console_login_address(address: str) -> str:
    """Sign-in attempts from one client address, any user (console/guard.py)."""
    return "ivr:console:login-address:" + hashlib.sha256(address.encode()).hexdigest()[:32]


def console_login_user(user: str) -> str:
    """Sign-in attempts for one user, any address."""
    return "ivr:console:login-user:" + hashlib.sha256(user.encode()).hexdigest()[:32]


CONSOLE_LOGIN_ALL = "ivr:console:login-all"  # sign-in attempts in all, per window


def console_login_known(user: str) -> str:
    """A set of the addresses a user signed in from (digests): they stay open when budgets run out."""
    return "ivr:console:login-known:" + hashlib.sha256(user.encode()).hexdigest()[:32]


CONSOLE_USERS_CHANGED = "ivr:console:users:changed"  # pub/sub: a user's name when it changed, was removed or signed out

# Written (SET) right before a WAIT for replicas (ivr/store/failover.py): WAIT counts the replicas that
# hold every write this connection made, so one fresh write makes it cover all earlier writes too.
REPLICATION_MARK = "ivr:replication:mark"


def seats_of_node(asterisk: str) -> str:
    """One node's own view of every seat (its seat follower's)."""
    return f"ivr:seats:node:{asterisk}"
