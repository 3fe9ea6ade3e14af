"""``Settings``: every section of the configuration in one frozen object, and the checks
that need more than one section (names that point nowhere)."""

from __future__ import annotations

import re

from pydantic import Field

from ivr.config.cluster import ClusterSettings, cluster_problems, seat_problems
from ivr.config.sections import AgiSettings, AmiSettings, RedisSettings, SipSettings, WebSettings
from ivr.core.callerid import CallerSettings
from ivr.core.strict import NAME, NUMBER, Strict
from ivr.numbers.model import NumberEntry
from queues.callback import CallbackSettings
from queues.model import Agent, PauseReasons, Phones, Queue, web_phone_problems
from queues.priority import PrioritySettings
from queues.sessions import LEADER_QUEUE, LeaderSession, session_problems
from supervision.model import SupervisionSettings, name_problems as supervision_name_problems
from recording.rules import RecordingSettings
from quality.model import QualitySettings
from reports.model import ReportSettings
from tickets.scope import OutOfScopeMatter
from tickets.model import RequestType
from tickets.settings import TicketSettings
from tracking.settings import TrackingSettings
from transfer.model import EMERGENCY_TRUNK, EmergencyTrunk, Platform, SubCenter

__all__ = ["ENGINE_MODELS", "ENGINE_SECTIONS", "Settings"]


class Settings(Strict):
    agi: AgiSettings = AgiSettings()
    ami: AmiSettings = AmiSettings()
    redis: RedisSettings = RedisSettings()
    sip: SipSettings = SipSettings()
    agents: dict[str, Agent] = {}
    queues: dict[str, Queue] = {}
    pause_reasons: PauseReasons = {"1": "小休"}
    phones: Phones = Field(Phones(), description="agents' phones: their OPTIONS probe (话机离线 when unanswered)")
    subcenters: dict[str, SubCenter] = {}
    emergency: EmergencyTrunk | None = Field(None, description="the trunk to 110/119/120/122 (应急联动)")
    platforms: dict[str, Platform] = Field({}, description="other 12345 platforms calls are transferred to (平台互转)")
    plan: str | None = Field(None, description="the number plan in config/plans/ (IVR_PLAN overrides)")
    numbers: dict[str, NumberEntry] = Field({}, description="the plan's numbers, then numbers of this deployment")
    tracking: TrackingSettings = TrackingSettings()
    web: WebSettings = WebSettings()
    tickets: TicketSettings = TicketSettings()
    priority: PrioritySettings = PrioritySettings()
    callers: CallerSettings = Field(CallerSettings(), description="caller IDs: which numbers may be called back")
    out_of_scope: dict[str, OutOfScopeMatter] = Field({}, description="matters 12345 does not accept (不予受理)")
    cluster: ClusterSettings | None = Field(None, description="proxies and Asterisk nodes (docs/cluster.md); none: one node")
    callbacks: CallbackSettings = Field(CallbackSettings(), description="callbacks the platform schedules itself")
    supervision: SupervisionSettings = Field(SupervisionSettings(), description="live supervision: supervisors' phones "
                                             "(docs/supervision.md)")
    recording: RecordingSettings = Field(RecordingSettings(), description="call recording: policy, files, retention "
                                         "(config/recording.yaml, docs/recording.md)")
    quality: QualitySettings = Field(QualitySettings(), description="quality inspection (质检): the rubric, pass mark "
                                     "and daily sample (config/quality.yaml, docs/quality.md)")
    reports: ReportSettings = Field(ReportSettings(), description="the periodic reports' hot spots "
                                    "(config/reports.yaml, docs/kpi.md)")
    sessions: dict[str, LeaderSession] = Field({}, description="leader reception sessions (领导接听, "
                                               "config/sessions.yaml, docs/sessions.md)")

    def reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Names that point nowhere, as (path in the config, reason)."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if "general" not in self.queues:
            out.append((("queues",), "a queue named 'general' is required: the 7×24 queue every failure falls back to"))
        for qname in self.queues:
            seen, q = [qname], self.queues[qname]
            while q.overflow and q.overflow in self.queues and q.overflow not in seen:
                seen.append(q.overflow)
                q = self.queues[q.overflow]
            if q.overflow in seen:
                out.append((("queues", qname, "overflow"), "queue overflows form a cycle: " + " → ".join([*seen, q.overflow])))
        for name in self.tickets.webhooks:
            if not re.fullmatch(NAME, name):
                out.append((("tickets", "webhooks", name), f"name {name!r} must match {NAME}"))
        keys: dict[str, str] = {}
        for mname, matter in self.out_of_scope.items():
            if matter.agent_key and matter.agent_key in keys:
                out.append((("out_of_scope", mname, "agent_key"),
                            f"agent_key {matter.agent_key} is taken by matter {keys[matter.agent_key]!r}"))
            elif matter.agent_key:
                keys[matter.agent_key] = mname
        for section in ("agents", "queues", "subcenters", "platforms", "out_of_scope"):
            for name in getattr(self, section):
                if not re.fullmatch(NAME, name):
                    out.append(((section, name), f"name {name!r} must match {NAME}"))
        skills = {q.skill_name(qname) for qname, q in self.queues.items()}
        for aname, agent in self.agents.items():
            out.extend(web_phone_problems(aname, agent, self.phones, proxies_without_ws=[
                p for p, proxy in (self.cluster.proxies if self.cluster else {}).items() if proxy.ws is None]))
            for skill in agent.skills:
                if skill not in skills:
                    out.append((("agents", aname, "skills", skill), f"skill {skill!r} is served by no queue"))
        for qname, q in self.queues.items():
            if q.overflow and q.overflow not in self.queues:
                out.append((("queues", qname, "overflow"), f"overflow {q.overflow!r} is not a defined queue"))
            if q.callback is not None and not self.sip.pstn_contact and not (self.cluster and self.cluster.carrier):
                out.append((("queues", qname, "callback"), "a callback needs sip.pstn_contact (how calls to citizens go "
                            "out) or, behind proxies, cluster.carrier"))
            if qname == "general" and q.hours is not None:
                out.append((("queues", qname, "hours"), "the general queue is 7×24: it has no hours"))
        if EMERGENCY_TRUNK in self.subcenters:
            out.append((("subcenters", EMERGENCY_TRUNK), f"{EMERGENCY_TRUNK!r} is the emergency trunk's name, not a sub-center's"))
        for pname in self.platforms:  # each is a PJSIP endpoint of its own name
            if pname in self.subcenters or pname in self.agents or pname in (EMERGENCY_TRUNK, "pstn"):
                out.append((("platforms", pname), f"{pname!r} already names a trunk or an agent"))
            elif self.platforms[pname].fallback_queue not in self.queues:
                out.append((("platforms", pname, "fallback_queue"),
                            f"{self.platforms[pname].fallback_queue!r} is not a defined queue"))
        for sname, s in self.subcenters.items():
            if s.fallback_queue not in self.queues:
                out.append((("subcenters", sname, "fallback_queue"), f"{s.fallback_queue!r} is not a defined queue"))
        for num, n in self.numbers.items():
            if not re.fullmatch(NUMBER, num):
                out.append((("numbers", num), f"number {num!r} must be 3-16 digits"))
            if n.subcenter and n.subcenter not in self.subcenters:
                out.append((("numbers", num, "subcenter"), f"{n.subcenter!r} is not a defined sub-center"))
            if n.mode == "subcenter" and not n.subcenter:
                out.append((("numbers", num, "mode"), "a sub-center number needs subcenter: (its gateway in subcenters.yaml)"))
            if n.skill and n.skill not in self.queues:
                out.append((("numbers", num, "skill"), f"skill {n.skill!r} is not a queue in queues.yaml"))
            if n.expert and not (n.skill or n.flow):
                out.append((("numbers", num, "expert"), "expert seats need a skill: (the expert queue) or a flow"))
            if n.announce_until and n.mode != "merged":
                out.append((("numbers", num, "announce_until"), "only a merged number has a transitional notice"))
        if self.sip.rtp_start >= self.sip.rtp_end:
            out.append((("sip", "rtp_start"), "sip.rtp_start must be below sip.rtp_end"))
        if self.cluster is not None:
            out += cluster_problems(self.cluster, self.sip.pstn_match) + seat_problems(self.cluster, self.agents)
        out += supervision_name_problems(self.supervision.supervisors, self.agents,
                                         [*self.subcenters, *self.platforms, EMERGENCY_TRUNK, "pstn"])
        out += self.recording.problems(set(self.numbers), set(self.queues), self.tickets.retention_days,
                                       {str(k) for k in RequestType})
        out += self.quality.problems()
        leader = self.queues.get(LEADER_QUEUE)
        leader_skill = leader.skill_name(LEADER_QUEUE) if leader else None
        out += session_problems(self.sessions, {a for a, agent in self.agents.items() if leader_skill in agent.skills},
                                leader is not None)
        lost = self.callbacks.node_loss  # checked when configured; by default a queue without callbacks means none
        if "callbacks" in self.model_fields_set and (lost.ivr or lost.waiting or lost.talking) and (
                lost.queue not in self.queues or self.queues[lost.queue].callback is None):
            out.append((("callbacks", "node_loss", "queue"), f"{lost.queue!r} is not a queue with a callback: (the calls "
                        "back of a lost node wait there for a seat)"))
        return out


ENGINE_MODELS: dict[str, type[Strict]] = {
    "agi": AgiSettings, "ami": AmiSettings, "redis": RedisSettings, "sip": SipSettings, "tracking": TrackingSettings,
    "web": WebSettings, "recording": RecordingSettings,
}
ENGINE_SECTIONS = tuple(ENGINE_MODELS)
