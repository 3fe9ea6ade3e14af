"""extensions_recording.conf: who is recorded, rendered from ``recording:`` (recording/rules.py).

The caller's own channel records, so a recording follows the citizen through transfers, a
three-party bridge and an overflow into another queue, in one file. ``recording.recorder`` says
which application: ``ivr`` (IvrRecord, our module asterisk-conf/modules/app_ivr_record.c, which
drains the call's audio on a timer) or ``mixmonitor`` (MixMonitor, woken for every frame). Both
write it stereo (MixMonitor's ``D``): what the caller's channel reads (the citizen) left, what it
hears (the seat, a sub-center, the bridge) right. ``b`` keeps only the bridged time. A recording "from answer"
is started as Queue() offers the call to a seat (the caller's CONNECTED_LINE_SEND_SUB) and
stopped as the seat hangs up: its audiohook costs Asterisk CPU for every frame while attached,
written or not, so neither the queue wait nor the survey is hooked. When the recording ends
(hang-up, or the stop application), ``<id>.raw`` is renamed ``<id>.done`` (IvrRecord itself;
MixMonitor by its command): the engine compresses only finished files (recording/worker.py). Nothing from the caller reaches a
path or the command: the id is the linkedid (Asterisk's), filtered; the directory is checked.
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.core.conftext import file_path, word
from recording.rules import DISCARD_SUFFIX, INCOMING

NOTICE_SOUND = "ivr12345/recording_notice"
ID_CHARS = "--.0-9A-Za-z_"  # FILTER ranges: "--." is - and . (a trailing - would be dropped)


def recording_globals(s: Settings) -> str:
    """IVR_REC_DIR, the default mode and notice, and IVR_REC_MATTER_<type>=never."""
    r = s.recording
    return (f"IVR_REC_DIR={file_path(r.dir.rstrip('/') + '/' + INCOMING)}\nIVR_REC_DEFAULT={r.default}\n"
            f"IVR_REC_NOTICE={int(r.notice)}\n"
            + "".join(f"IVR_REC_MATTER_{word(matter)}=never\n" for matter in sorted(r.matters)))


def queue_step(s: Settings, queue: str) -> str:
    """The queue's line in its extension (before Queue()): the call's mode and the notice."""
    rule = s.recording.queues.get(queue)
    mode = rule.mode if rule and rule.mode else ""
    notice = "" if rule is None or rule.notice is None else str(int(rule.notice))
    return f" same => n,Gosub(ivr-recording,queue,1({mode},{notice}))"


IVR_MODULE = "app_ivr_record.so"
HAS_IVR = f"$[${{IFMODULE({IVR_MODULE})}}]"  # an Asterisk installed without our module: MixMonitor records
MIXMONITOR = ' same => n,MixMonitor(${file}.raw,${IF($["${ARG1}" = "answer"]?b:)}Di(IVR_REC_ID),mv ${file}.raw ${file}.done)\n'


def _start(s: Settings) -> str:
    """``begin``'s last lines: the application that records ``${file}.raw`` (``b`` for ``answer``),
    its id in IVR_REC_ID, the file renamed ``${file}.done`` when it ends. With ``ivr`` and the module
    missing, MixMonitor (and a warning in Asterisk's log) rather than a call cut by an unknown app."""
    if s.recording.recorder == "mixmonitor":
        return MIXMONITOR + " same => n,Return()\n"
    return (f" same => n,GotoIf({HAS_IVR}?ivr)\n"
            f" same => n,Log(WARNING,recording.recorder is ivr but {IVR_MODULE} is not loaded: MixMonitor records)\n"
            + MIXMONITOR + " same => n,Return()\n"
            ' same => n(ivr),IvrRecord(${file}.raw,${IF($["${ARG1}" = "answer"]?b:)}i(IVR_REC_ID),${file}.done)\n'
            " same => n,Return()\n")


def _stop(s: Settings) -> str:
    if s.recording.recorder == "mixmonitor":
        return "StopMixMonitor(${IVR_REC_ID})"
    return f"ExecIf({HAS_IVR}?IvrRecordStop(${{IVR_REC_ID}}):StopMixMonitor(${{IVR_REC_ID}}))"


def recording_dialplan(s: Settings) -> str:
    """``[ivr-recording]`` (line: at the answer; queue: as a queue is joined; begin: the recorder)
    and ``[ivr-recording-lines]`` (each line's own rule)."""
    lines = ["[ivr-recording-lines]"]
    for number, rule in sorted(s.recording.lines.items()):
        lines.append(f"exten => {word(number)},1,Set(IVR_REC_LINE={rule.mode or ''})")
        lines.append(f" same => n,Set(IVR_REC_LINE_NOTICE={'' if rule.notice is None else int(rule.notice)})")
        lines.append(" same => n,Return()")
    lines.append("exten => _X.,1,Return()")  # any other line (3-16 digits): no rule of its own
    discard = f"${{IVR_REC_DIR}}/${{IVR_RECORDING}}{DISCARD_SUFFIX}"
    return "\n".join(lines) + f"""

[ivr-recording]
; at the answer ([ivr-answer], ARG1 = the dialed line): the line's rule; a `start` line records now
exten => line,1,Set(IVR_REC_LINE=)
 same => n,Set(IVR_REC_LINE_NOTICE=)
 same => n,Gosub(ivr-recording-lines,${{ARG1}},1)
 same => n,GotoIf($["${{IVR_REC_LINE}}" != "start"]?done)
 same => n,Gosub(begin,1(start))
 same => n(done),Return()

; a callback's stand-in (ARG1 = the line the citizen first dialed, digits; empty: unknown): that line's
; rule and notice, as the citizen's own call had them; nothing begins here (no IVR to record: a `start`
; line's callback is recorded from the seat's answer, like any queue call)
exten => callback,1,Set(IVR_REC_LINE=)
 same => n,Set(IVR_REC_LINE_NOTICE=)
 same => n,GotoIf($[${{LEN(${{ARG1}})}} < 3]?done)
 same => n,Gosub(ivr-recording-lines,${{ARG1}},1)
 same => n(done),Return()

; as the caller joins a queue (ARG1 = the queue's mode, ARG2 = its notice 0/1; empty: none of its own):
; the line's mode, else the queue's, else the default; `never` of the line, the queue or the matter
; (the request type the IVR set) wins, and ends a recording begun at the start (its file discarded)
exten => queue,1,Set(LOCAL(mode)=${{IF($["${{ARG1}}" != ""]?${{ARG1}}:${{IVR_REC_DEFAULT}})}})
 same => n,ExecIf($["${{IVR_REC_LINE}}" != ""]?Set(LOCAL(mode)=${{IVR_REC_LINE}}))
 same => n,Set(LOCAL(matter)=${{FILTER(a-z,${{REQUEST_TYPE}})}})
 same => n,ExecIf($["${{matter}}" != ""]?Set(LOCAL(matter)=${{GLOBAL(IVR_REC_MATTER_${{matter}})}}))
 same => n,ExecIf($["${{ARG1}}" = "never" | "${{IVR_REC_LINE}}" = "never" | "${{matter}}" = "never"]?Set(LOCAL(mode)=never))
 same => n,GotoIf($["${{mode}}" = "never"]?never)
 same => n,GotoIf($["${{IVR_RECORDING}}${{IVR_REC_AT_ANSWER}}" != ""]?notice)
 ; from answer: recording starts as a seat answers (`connect`, below), not while the caller waits
 same => n,Set(IVR_REC_AT_ANSWER=1)
 same => n,Set(CONNECTED_LINE_SEND_SUB=ivr-recording,connect,1)
 ; the notice, once per call, before a seat is connected; a callback's stand-in has nobody to tell:
 ; it marks the notice due (IVR_REC_CB_NOTICE) and the citizen called back hears it as they answer
 same => n(notice),Set(LOCAL(notice)=${{IF($["${{ARG2}}" != ""]?${{ARG2}}:${{IVR_REC_NOTICE}})}})
 same => n,ExecIf($["${{IVR_REC_LINE_NOTICE}}" != ""]?Set(LOCAL(notice)=${{IVR_REC_LINE_NOTICE}}))
 same => n,GotoIf($[!${{notice}} | "${{IVR_REC_NOTICED}}" != ""]?done)
 same => n,Set(IVR_REC_NOTICED=1)
 same => n,ExecIf($["${{IVR_CALLBACK_OF}}" != ""]?Set(IVR_REC_CB_NOTICE=1))
 same => n,GotoIf($["${{IVR_CALLBACK_OF}}" != ""]?done)
 same => n,Playback({NOTICE_SOUND})
 same => n(done),Return()
 same => n(never),Set(CONNECTED_LINE_SEND_SUB=)
 same => n,Set(IVR_REC_AT_ANSWER=)
 same => n,GotoIf($["${{IVR_RECORDING}}" = ""]?done)
 same => n,{_stop(s)}
 same => n,Set(FILE({discard})=never)
 same => n,Set(IVR_RECORDING=)
 same => n,Return()

; as a seat answers, on the caller's channel before it is bridged to the seat: Queue() runs the
; caller's CONNECTED_LINE_SEND_SUB with the seat's identity (the seats' endpoints have a caller id,
; pjsip.py); once per call, the recording then follows the caller through transfers and bridges
exten => connect,1,Set(CONNECTED_LINE_SEND_SUB=)
 same => n,GotoIf($["${{IVR_RECORDING}}" != "" | "${{IVR_REC_AT_ANSWER}}" = ""]?done)
 same => n,Gosub(begin,1(answer))
 same => n(done),Return()

; the seat hung up and the caller stays for the survey (Queue() returned CONTINUE): a recording
; from answer ends here, so the survey's prompts and wait are not hooked; `start` records on
exten => seat-gone,1,GotoIf($["${{IVR_RECORDING}}" = "" | "${{IVR_REC_AT_ANSWER}}" = ""]?done)
 same => n,{_stop(s)}
 same => n(done),Return()

; the citizen called back, on their own channel as they answer, before the seat is bridged to them
; (Dial's U in [ivr-callback-dial], when the stand-in's queue step marked the notice due)
exten => notice,1,Playback({NOTICE_SOUND})
 same => n,Return()

; the recorder on this (the caller's) channel, ARG1 = answer (only while bridged) or start (all of it);
; the file is <call>.<mode> (a callback's stand-in: <the call it calls back>-cb-<its own>.<mode>)
exten => begin,1,Set(LOCAL(id)=${{FILTER({ID_CHARS},${{CHANNEL(linkedid)}})}})
 same => n,ExecIf($["${{IVR_CALLBACK_OF}}" != ""]?Set(LOCAL(id)=${{FILTER({ID_CHARS},${{IVR_CALLBACK_OF}})}}-cb-${{id}}))
 same => n,Set(IVR_RECORDING=${{id}}.${{ARG1}})
 same => n,Set(LOCAL(file)=${{IVR_REC_DIR}}/${{IVR_RECORDING}})
{_start(s)}"""
