"""The test-only dialplan: callers played by Local channels and the benchmarks' contexts. The test
bed hands it to :mod:`ivr.asterisk_conf` as ``RenderOptions.extra_files`` (extensions_testbed.conf),
so a production Asterisk, and the engine's package, never has it."""

from __future__ import annotations


def testbed_dialplan() -> str:
    """Test-only contexts, rendered only into test beds.

    - ``ivr-test-caller``: the far leg of a Local channel that plays a caller's part.
    - ``ivr-test-answer``: the far leg of a Local channel that answers at once and holds.
    - ``ivr-bench-*``: for ``benchmarks/bench_ivr.py``: a caller leg that presses keys, the
      12345 main flow (``config/flows/main.yaml``) written as pure dialplan, and an AGI
      entry for the round-trip latency benchmark.
    """
    return """
[ivr-test-caller]
exten => s,1,Wait(${IF($["${TEST_HOLD}" = ""]?120:${TEST_HOLD})})
 same => n,Hangup()

; The far leg of a Local channel that answers at once and holds: the ;1 leg is up for whatever
; context a test sends it to (tests/integration/test_supervision.py)
[ivr-test-answer]
exten => s,1,Answer()
 same => n,Wait(120)
 same => n,Hangup()

; Benchmark caller: the ;1 leg of Local/<dialed>@<ivr context>. Once the IVR answers it
; waits BENCH_DELAY s, presses BENCH_KEYS (DTMF frames straight into the IVR leg, no RTP),
; then holds until the benchmark hangs the call up (BENCH_HOLD s at most).
[ivr-bench-caller]
exten => s,1,Wait(${BENCH_DELAY})
 same => n,GotoIf($["${BENCH_KEYS}" = ""]?hold)
 same => n,SendDTMF(${BENCH_KEYS},50,${BENCH_DTMF_MS})
 same => n(hold),Wait(${BENCH_HOLD})
 same => n,Hangup()

; The 12345 main flow (config/flows/main.yaml) as pure dialplan, to compare against the
; engine running it over FastAGI: the same prelude as [from-pstn] without the AGI, the same
; prompts, keys, menu timeout and channel variables, and the same [ivr-route] ending.
[ivr-bench-dialplan]
exten => _X.,1,NoOp(inbound call to ${EXTEN})
 same => n,Answer()
 same => n,Set(CHANNEL(language)=zh)
 same => n,Set(IVR_DIALED=${EXTEN})
 same => n,Goto(ivr-bench-dialplan-main,s,1)

; its own context so that a one-digit key never waits for a longer match (_X. above)
[ivr-bench-dialplan-main]
; greeting (interruptible: a key skips the menu prompt), then the menu: 3 s, no retry
exten => s,1,Background(ivr12345/welcome_12345)
 same => n,Background(ivr12345/main_menu)
 same => n,WaitExten(3)
exten => 1,1,Set(REQUEST_TYPE=consult)
 same => n,Goto(general,1)
exten => 2,1,Set(REQUEST_TYPE=complaint)
 same => n,Goto(general,1)
exten => 3,1,Set(REQUEST_TYPE=suggestion)
 same => n,Goto(general,1)
exten => 0,1,Goto(general,1)
exten => t,1,Goto(general,1)
exten => i,1,Goto(general,1)
; the engine's QueueRoute("general"): IVR_ROUTE set last, then the shared route
exten => general,1,Set(IVR_QUEUE=general)
 same => n,Set(IVR_QUEUE_PRIORITY=0)
 same => n,Set(IVR_ROUTE=queue)
 same => n,Goto(ivr-route,queue,1)

; AGI round-trip latency: Local/<port>@ivr-bench-agi hands the channel to the benchmark's
; own FastAGI server on 127.0.0.1:<port>, which sends commands in a loop.
[ivr-bench-agi]
exten => _X.,1,Answer()
 same => n,Set(AGISIGHUP=no)
 same => n,Set(BENCH_VALUE=13900000001)
 same => n,AGI(agi://127.0.0.1:${EXTEN}/bench)
 same => n,Hangup()
"""
