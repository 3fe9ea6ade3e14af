"""The two outside parties of bench_ticket_export.py, each in its own process so that their
clocks do not share the engine's event loop:

* ``agi PORT SESSIONS CONCURRENCY``: plays Asterisk. Opens FastAGI sessions, answers every
  command at once and measures each AGI round trip as Asterisk sees it: from its reply sent to
  the engine's next command received. Prints the round trips (ms) as one JSON list.
* ``download URL COOKIE``: a browser downloading the export again and again until stdin
  closes; prints one JSON line per download (seconds, bytes).

Usage: python export_probe.py agi|download ...
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.request

ENV = ("agi_network_script: bench\nagi_channel: PJSIP/pstn-{n:08x}\nagi_uniqueid: 1796160000.{n}\n"
       "agi_callerid: 13900000001\nagi_arg_1: 12345\n\n")


def agi_sessions(port: int, sessions: int, first: int, out: list[float]) -> None:
    for n in range(first, first + sessions):
        with socket.create_connection(("127.0.0.1", port)) as s:
            f = s.makefile("rwb", buffering=0)
            s.sendall(ENV.format(n=n).encode())
            line = f.readline()
            while line:
                s.sendall(b"200 result=1 (x)\n")
                sent = time.perf_counter()
                line = f.readline()
                if line:
                    out.append((time.perf_counter() - sent) * 1000)


def agi_main(port: int, sessions: int, concurrency: int) -> None:
    results: list[list[float]] = [[] for _ in range(concurrency)]
    threads = [threading.Thread(target=agi_sessions, args=(port, sessions // concurrency, i * sessions, results[i]))
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps([x for r in results for x in r]), flush=True)


def download_main(url: str, cookie: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        start, size = time.perf_counter(), 0
        request = urllib.request.Request(url, headers={"Cookie": cookie})
        with urllib.request.urlopen(request) as response:
            while chunk := response.read(65536):
                size += len(chunk)
        print(json.dumps({"s": time.perf_counter() - start, "bytes": size}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "agi":
        agi_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        download_main(sys.argv[2], sys.argv[3])
