"""``/metrics`` in Prometheus' text format, for operators' own monitoring (no personal data).

Not public: Prometheus sends ``Authorization: Bearer <token>`` with the token of the engine's
``IVR_METRICS_TOKEN`` (its ``authorization: credentials_file``); a signed-in admin may read it
in a browser. Without the variable only admins can (docs/operations.md).

From the engine process itself: calls in progress, the AGI round trip and the event loop's lag
(:mod:`ivr.core.latency`, re-bucketed to a few bounds), the journals' backlog. From Redis, shared by
every engine: today's calls per line and queue with their waits and satisfaction (the KPI counters), the push
backlog per department endpoint (consumer-group lag + unacknowledged) and its dead letters, each
node's trunks reachable or not (transfer/trunk_watch.py). From the
disk: the recordings' headroom and its alarm (recording/, docs/recording.md).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import ResponseError

from console.context import Console, EngineView  # EngineView: ivr.service imports it from here
from ivr.store import keyspace
from ivr.core.latency import BOUNDS, Histogram
from queues import kpi
from recording.store import disk, finished
from tickets.writeback import counters, workflow_kpis
from transfer.model import qualified_trunks
from transfer.trunk_watch import trunk_rows

if TYPE_CHECKING:
    from console.users import User

LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


TOKEN_VARIABLE = "IVR_METRICS_TOKEN"


def allowed(authorization: str, user: "User | None", environ: Mapping[str, str] | None = None) -> bool:
    """A bearer token equal to ``IVR_METRICS_TOKEN`` (when set), or an admin's session."""
    token = (os.environ if environ is None else environ).get(TOKEN_VARIABLE, "")
    scheme, _, sent = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
        return True
    return user is not None and user.role == "admin"


class _Snapshot(Collector):
    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    """Our 10 %-step buckets summed up to Prometheus' bounds (each sample counted at its bucket's top)."""
    buckets, seen, i = [], 0, 0
    for bound in LATENCY_BOUNDS:
        while i < len(BOUNDS) and BOUNDS[i] <= bound * 1.0000001:
            seen += h.counts[i]
            i += 1
        buckets.append((repr(bound), seen))
    buckets.append(("+Inf", sum(h.counts)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


async def render(console: "Console", engine: EngineView | None) -> bytes:
    families: list[Any] = []
    if engine is not None:
        families.append(GaugeMetricFamily("ivr_active_calls", "calls the engine is walking through a flow now",
                                          value=engine.active_calls()))
        families.append(histogram("ivr_agi_roundtrip_seconds", "AGI commands that do not wait for the caller",
                                  engine.latency.agi_roundtrip))
        families.append(histogram("ivr_event_loop_lag_seconds", "how late the engine's event loop woke",
                                  engine.latency.loop_lag))
        backlog = GaugeMetricFamily("ivr_journal_backlog", "records journaled on disk, not yet in Redis", labels=["journal"])
        outage = GaugeMetricFamily("ivr_journal_only", "1 while Redis is out and records wait on disk", labels=["journal"])
        for name, writer in engine.journals().items():
            backlog.add_metric([name], writer.backlog)
            outage.add_metric([name], int(writer.journal_only))
        families += [backlog, outage]
        families.append(CounterMetricFamily("ivr_agi_refused_connections", "FastAGI connections from outside "
                                            "agi.allowed_peers, cut before reading", value=engine.agi_refused()))
    families += await _kpi(console)
    families += await _push(console)
    families += await _workflow(console)
    families.append(await _trunks(console))
    families += await asyncio.to_thread(recording_families, console)
    registry = CollectorRegistry()
    registry.register(_Snapshot(families))
    return generate_latest(registry)


async def _kpi(console: "Console") -> list[Any]:
    if console.tickets is None:
        return []
    now = datetime.now().astimezone()
    today = (await console.tickets.kpi_report(kpi.standard_windows(now)[0]))
    calls = GaugeMetricFamily("ivr_calls_today", "calls offered today (local day), per dialed line", labels=["line"])
    for line, c in today["lines"].items():
        calls.add_metric([line], c["offered"])
    offered = GaugeMetricFamily("ivr_queue_calls_today", "calls offered to a queue today, by outcome", labels=["queue", "outcome"])
    waits = GaugeMetricFamily("ivr_queue_wait_seconds_today", "seconds callers waited in the queue today (sum)", labels=["queue"])
    longest = GaugeMetricFamily("ivr_queue_longest_wait_seconds_today", "the longest wait in the queue today", labels=["queue"])
    for queue, c in today["queues"].items():
        for outcome in ("offered", "answered", "answered_15", "answered_30", "abandoned", "overflowed", "callbacks"):
            offered.add_metric([queue, outcome], c[outcome])
        waits.add_metric([queue], c["wait_ms"] / 1000)
        longest.add_metric([queue], c["longest_wait_s"])
    return [calls, offered, waits, longest, *_survey(today["satisfaction"])]


SURVEY_OUTCOMES = {"asked": "survey_offered", "rated": "rated", "satisfied": "satisfied", "low": "low_rated"}


def _survey(survey: Mapping[str, Any]) -> list[Any]:
    """Today's satisfaction survey per queue and per line (labels bounded by the config, never a caller or an agent)."""
    calls = GaugeMetricFamily("ivr_satisfaction_calls_today", "callers asked to rate today, by outcome "
                              "(rated: keyed 1-5; satisfied: 4-5; low: at or below tickets.satisfaction_low)",
                              labels=["scope", "name", "outcome"])
    ratings = GaugeMetricFamily("ivr_satisfaction_rating_sum_today", "sum of today's ratings (average = sum / rated)",
                                labels=["scope", "name"])
    for scope in ("queue", "line"):
        for name, c in survey[f"{scope}s"].items():
            for outcome, counter in SURVEY_OUTCOMES.items():
                calls.add_metric([scope, name, outcome], c[counter])
            ratings.add_metric([scope, name], c["rating_sum"])
    return [calls, ratings]


async def _push(console: "Console") -> list[Any]:
    endpoints = list(console.settings().tickets.webhooks)
    backlog = GaugeMetricFamily("ivr_push_backlog", "ticket events not yet delivered to the endpoint", labels=["endpoint"])
    dead = GaugeMetricFamily("ivr_push_dead_letters", "events parked after the last try", labels=["endpoint"])
    if not endpoints:
        return [backlog, dead]
    try:
        groups = {g["name"]: g for g in await console.redis.xinfo_groups(keyspace.TICKET_EVENTS)}
    except ResponseError:  # no stream yet: nothing to deliver
        groups = {}
    for name in endpoints:
        group = groups.get(keyspace.push_group(name), {})
        lag = group.get("lag")
        if lag is None:  # no group yet: every event in the stream waits for it
            lag = 0 if group else await console.redis.xlen(keyspace.TICKET_EVENTS)
        backlog.add_metric([name], int(lag) + int(group.get("pending", 0)))
        dead.add_metric([name], await console.redis.llen(keyspace.push_dead(name)))
    return [backlog, dead]


async def _workflow(console: "Console") -> list[Any]:
    """Cases after the call: overdue open ones, the on-time share, the departments' write-backs."""
    w = await workflow_kpis(console.redis)
    applied, refused = await counters(console.redis)
    out = [GaugeMetricFamily("ivr_tickets_overdue", "open cases (not 办结) past their deadline (超期)", value=w["overdue"]),
           GaugeMetricFamily("ivr_tickets_closed_on_time_ratio", "share of cases closed by their deadline",
                             value=w["on_time_share"])]
    closed = CounterMetricFamily("ivr_tickets_closed", "cases closed by a department, by whether on time", labels=["on_time"])
    closed.add_metric(["yes"], w["closed_on_time"])
    closed.add_metric(["no"], w["closed_late"])
    events = CounterMetricFamily("ivr_dept_writebacks", "department write-backs applied", labels=["department", "event"])
    for key, n in sorted(applied.items()):
        events.add_metric(key.split("|", 1), n)
    refusals = CounterMetricFamily("ivr_dept_refused", "department write-backs refused", labels=["department", "reason"])
    for key, n in sorted(refused.items()):
        refusals.add_metric(key.split("|", 1), n)
    return [*out, closed, events, refusals]


async def _trunks(console: "Console") -> Any:
    """Each node's qualified trunks (sub-centers, the emergency trunk) as its follower last saw them."""
    up = GaugeMetricFamily("ivr_trunk_up", "1: the trunk's gateway answers Asterisk's OPTIONS probe; 0: unreachable "
                           "(calls for it fail at once and go to the fallback queue)", labels=["trunk", "node"])
    settings = console.settings()
    wanted = set(qualified_trunks(settings.subcenters, settings.emergency))
    for row in trunk_rows(cast(dict[str, str], await console.redis.hgetall(keyspace.TRUNKS))):
        if row["trunk"] in wanted:
            up.add_metric([row["trunk"], row["asterisk"]], int(row["up"]))
    return up


def recording_families(console: "Console") -> list[Any]:
    """The recordings disk (statvfs: no file is read) and the finished recordings not yet kept."""
    s = console.settings().recording
    d = disk(s)
    out = [GaugeMetricFamily("ivr_recordings_pending", "finished recordings waiting to be compressed onto their ticket",
                             value=len(finished(s)))]
    if d is not None:
        out += [GaugeMetricFamily("ivr_recording_disk_free_bytes", "free space on the recordings disk", value=d.free),
                GaugeMetricFamily("ivr_recording_disk_used_ratio", "share of the recordings disk in use", value=d.used_ratio),
                GaugeMetricFamily("ivr_recording_disk_alarm", "1: the recordings disk is past recording.disk_alarm_percent "
                                  "or below recording.disk_min_free_mb, or no file can be created there (no free inode, "
                                  "not writable: calls go unrecorded; they are answered regardless)", value=int(d.alarm))]
    return out
