"""The ``recording:`` section of the configuration and the rules read from it (no I/O).

Who is recorded is data: a mode per dialed line, per queue and per matter (the request type the
IVR set), over a default. ``answer`` records from the moment a seat answers (MixMonitor's ``b``:
only while the caller is bridged), ``start`` from the moment the platform answers the call (the
IVR included; lines only), ``never`` not at all. ``never`` anywhere wins: a line or a matter that
must not be recorded is not, whatever the queue says. Files are stereo: the caller left, the other
party (seat, sub-center, three-party bridge) right (MixMonitor's ``D`` on the caller's channel).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Collection, Literal

from pydantic import Field, model_validator

from ivr.core.conftext import FILE_PATH
from ivr.core.strict import Strict

Mode = Literal["answer", "start", "never"]
QueueMode = Literal["answer", "never"]  # a queue is reached after the start: it cannot record from it
Recorder = Literal["ivr", "mixmonitor"]  # Asterisk's application that writes the file (docs/recording.md)

NOTICE_PROMPT = "recording_notice"  # prompts/catalog.yaml: 为了提高服务质量，您的通话可能会被录音
RAW_RATE = 8000  # Hz: MixMonitor's D option writes 8 kHz signed linear (the seats' G.711)
RAW_CHANNELS = 2  # left: the caller's channel reads (the citizen), right: what it hears (the seat)
RAW_BYTES_PER_SECOND = RAW_RATE * RAW_CHANNELS * 2
INCOMING = "incoming"  # MixMonitor writes <id>.raw here during the call
DISCARD_SUFFIX = ".discard"  # the dialplan's mark: a recording begun at the start whose matter forbids it
STORED_SUFFIX = ".opus"  # Ogg Opus: every browser plays it (HTML5 audio)
MIN_TALK = 1.0  # s of talk after which a recorded call must have audio: its absence is a failure on the ticket
MIN_INODES = 16  # free inodes under which MixMonitor may not create the next call's file: the disk alarm
CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # a linkedid as a file name: nothing else gets in


class _Rule(Strict):
    """A rule is written ``never`` for short, or ``{mode: never, notice: false}``."""

    notice: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value


class LineRule(_Rule):
    """A dialed line's rule: its mode and whether the notice is played (unset: the default's)."""

    mode: Mode | None = None


class QueueRule(_Rule):
    """A queue's rule: a queue is joined after the start, so answer or never."""

    mode: QueueMode | None = None


class RecordingSettings(Strict):
    """Recording policy, where the files live, how long they are kept, when the disk alarms."""

    dir: str = Field("/var/spool/ivr12345/recordings", pattern=FILE_PATH,
                     description="where recordings are written and kept (outside Asterisk's root file system; "
                     "Asterisk writes <dir>/incoming/, the engine keeps <dir>/YYYY/MM/DD/<ticket>.opus)")
    recorder: Recorder = Field("ivr", description="who writes the file in Asterisk: ivr (IvrRecord, the project's "
                               "module asterisk-conf/modules/app_ivr_record.c: its thread drains the call's audio "
                               "every 100 ms) or mixmonitor (Asterisk's MixMonitor: woken for every 20 ms frame); "
                               "both write the same stereo file")
    default: Mode = Field("never", description="a call's mode when no line, queue or matter rule says otherwise "
                          "(without a recording: section nothing is recorded; config/recording.yaml says answer)")
    notice: bool = Field(True, description="play recording_notice (为了提高服务质量，您的通话可能会被录音) before a seat "
                         "is connected to a recorded call")
    lines: dict[str, LineRule] = Field({}, description="per dialed number: answer | start | never, or {mode, notice}")
    queues: dict[str, QueueRule] = Field({}, description="per queue: answer | never, or {mode, notice}")
    matters: dict[str, Literal["never"]] = Field(
        {}, description="request types that must not be recorded (e.g. report: never, to protect whistle-blowers)")
    retention_days: float = Field(180, gt=0, le=3650, description="a recording is deleted this long after its call "
                                  "(at most tickets.retention_days: the ticket must be there to say so)")
    bitrate_kbps: int = Field(28, ge=24, le=128, description="Opus bitrate of the kept file (stereo speech, 8 kHz); "
                              "below 28 kbit/s libopus narrows the stereo image (33:1 between the channels at 24, "
                              "200:1 at 28, measured on test tones), at 16 the caller and the seat are mixed")
    encode_workers: int = Field(1, ge=1, le=16, description="files compressed at once (libopus in a niced thread)")
    disk_alarm_percent: float = Field(80, gt=0, lt=100, description="the disk alarm is raised above this use")
    disk_min_free_mb: int = Field(2048, ge=0, description="... or below this much free space")
    agents_play_own: bool = Field(False, description="agents may play (and download) the recordings of calls they "
                                  "answered themselves; supervisors and admins play any (always with a reason, audited)")

    def problems(self, lines: set[str], queues: set[str], tickets_retention_days: int,
                 request_types: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
        """Names that point nowhere and a retention the ticket would not outlive."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for number in self.lines:
            if number not in lines:
                out.append((("recording", "lines", number), f"{number!r} is not a number of the plan"))
        for name, rule in self.queues.items():
            if name not in queues:
                out.append((("recording", "queues", name), f"{name!r} is not a defined queue"))
            elif rule.mode is None and rule.notice is None:
                out.append((("recording", "queues", name), "an empty rule: give mode or notice"))
        for matter in self.matters:
            if matter not in request_types:
                out.append((("recording", "matters", matter), f"{matter!r} is not a request type "
                            f"({', '.join(sorted(request_types))})"))
        if self.retention_days > tickets_retention_days:
            out.append((("recording", "retention_days"), f"longer than tickets.retention_days ({tickets_retention_days}): "
                        "a recording must go before (or with) the ticket that says it existed"))
        return out


def line_mode(s: RecordingSettings, line: str) -> Mode | None:
    """The line's own mode (None: no rule)."""
    rule = s.lines.get(line)
    return rule.mode if rule else None


def call_mode(s: RecordingSettings, line: str, queue: str, matter: str = "") -> Mode:
    """The mode a call has when it joins ``queue`` (the dialplan computes the same, per call):
    the line's, else the queue's, else the default; ``never`` anywhere wins."""
    line_rule, queue_rule = s.lines.get(line), s.queues.get(queue)
    modes = [r.mode for r in (line_rule, queue_rule) if r is not None and r.mode is not None]
    if "never" in modes or s.matters.get(matter) == "never":
        return "never"
    return modes[0] if modes else s.default


def notice_for(s: RecordingSettings, line: str, queue: str) -> bool:
    """Whether a recorded call hears the notice: the line's rule, else the queue's, else the default."""
    for rule in (s.lines.get(line), s.queues.get(queue)):
        if rule is not None and rule.notice is not None:
            return rule.notice
    return s.notice


def notice_possible(s: RecordingSettings, line: str) -> bool:
    """Whether a call to ``line`` may hear the notice before a seat (``ivr check`` counts its seconds
    in the line's time to a human): not when the line is never recorded or has the notice off, nor
    when no rule could record it or none plays the notice. A queue's own rule counts as possible."""
    rule = s.lines.get(line)
    if rule is not None and (rule.mode == "never" or rule.notice is False):
        return False
    recorded = (rule is not None and rule.mode is not None) or s.default != "never" or any(
        q.mode == "answer" for q in s.queues.values())
    told = (rule is not None and rule.notice) or s.notice or any(q.notice for q in s.queues.values())
    return bool(recorded and told)


def call_id_ok(call_id: str) -> bool:
    """A linkedid usable as a file name (the worker builds paths only from these)."""
    return bool(CALL_ID.fullmatch(call_id)) and ".." not in call_id


def stored_path(ticket_number: str, received: str) -> PurePosixPath:
    """Where a ticket's recording is kept, relative to ``dir``: by the day received, named by the
    ticket number (``2026/12/06/20261206-12345-00017.opus``); a second recording of the same
    ticket (a callback) gets ``-2``, ``-3`` … from :func:`numbered`."""
    day = datetime.fromisoformat(received)
    if not re.fullmatch(r"[0-9]{8}-[0-9]{3,16}-[0-9]{5,}", ticket_number):
        raise ValueError(f"not a ticket number: {ticket_number!r}")
    return PurePosixPath(f"{day:%Y}/{day:%m}/{day:%d}/{ticket_number}{STORED_SUFFIX}")


def numbered(path: PurePosixPath, n: int) -> PurePosixPath:
    """The n-th (1-based) recording of a ticket: the first keeps the plain name."""
    return path if n <= 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def expired(received: str, now: datetime, retention_days: float) -> bool:
    """A recording is deleted ``retention_days`` after its call was received."""
    return (now - datetime.fromisoformat(received)).total_seconds() >= retention_days * 86_400


def raw_seconds(size: int) -> float:
    """Seconds of talk in a raw file MixMonitor wrote with ``D``."""
    return size / RAW_BYTES_PER_SECOND


def disk_alarm(s: RecordingSettings, total: int, free: int, problem: str = "") -> bool:
    """The disk holding the recordings is filling up: raise the alarm long before it is full; and
    at once when no file can be created there (``problem``: :func:`disk_problem`)."""
    used_percent = 100.0 * (total - free) / total if total else 100.0
    return bool(problem) or used_percent >= s.disk_alarm_percent or free < s.disk_min_free_mb * 1024 * 1024


def disk_problem(inodes_total: int, inodes_free: int, writable: bool) -> str:
    """Why MixMonitor could not create a file in the incoming directory, whatever the free space:
    no inode left (a file system without a fixed count has ``inodes_total`` 0), or the directory is
    not writable; "" when it can."""
    if inodes_total and inodes_free < MIN_INODES:
        return FAILED_NO_INODES
    return "" if writable else FAILED_NOT_WRITABLE


PLAYERS = ("admin", "supervisor")  # roles that may play any ticket's recording (with a reason, audited)


def playback_refusal(role: str, user_agent: str | None, seats: Collection[str], agents_play_own: bool) -> str | None:
    """Why this console user may not play (or download) a recording, or None if they may:
    supervisors and admins any; an agent only a call its own seat talked on (``seats``: the
    ticket's agent, a seat that answered the call or the callback: recording/expect.py seats_of),
    and only where ``agents_play_own`` allows it; any other role never. The reason is shown
    (Mandarin) and audited."""
    if role in PLAYERS:
        return None
    if role != "agent":
        return "您的角色无权播放通话录音。"
    if not user_agent or user_agent not in seats:
        return "座席只能播放自己接听的通话录音。"
    if not agents_play_own:
        return "本中心未允许座席播放通话录音（recording.agents_play_own）。"
    return None


# Recording.failed: why a call that talked has no recording (recording/worker.py), and how the console says it;
# the last three: MixMonitor created no file at all
FAILED_DISK_FULL, FAILED_NO_AUDIO = "disk-full", "no-audio"
FAILED_NO_INODES, FAILED_NOT_WRITABLE, FAILED_NO_FILE = "no-inodes", "not-writable", "no-file"
FAILED_LABELS = {FAILED_DISK_FULL: "录音磁盘已满，未录到声音", FAILED_NO_AUDIO: "未录到声音（见 Asterisk 日志）",
                 FAILED_NO_INODES: "录音磁盘的文件节点（inode）已用尽，未能创建录音文件",
                 FAILED_NOT_WRITABLE: "录音目录不可写，未能创建录音文件",
                 FAILED_NO_FILE: "未能创建录音文件（见 Asterisk 日志）"}
FAILED_WHY = {FAILED_NO_INODES: "no file created: the recordings disk has no free inode",
              FAILED_NOT_WRITABLE: "no file created: the recordings directory is not writable",
              FAILED_NO_FILE: "no file created (see Asterisk's log)"}


def failed_label(code: str) -> str:
    return FAILED_LABELS.get(code, code)


def incomplete_label(seconds: float, expected: float) -> str:
    """A file cut short (the disk filled during the call), as the console says it."""
    return f"录音不完整（录到 {seconds:.0f} 秒，通话 {expected:.0f} 秒）"
