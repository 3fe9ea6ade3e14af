"""The floor of any FastAGI engine for the benchmark's calls: a peer that does nothing else.

For each AGI session it does what the engine's main flow does on the wire for a caller who
presses a key during the greeting: reads the environment, sends ``STREAM FILE`` of the greeting
with every digit as escape, then one ``EXEC MSet`` with the same route variables, and closes.
No flow, no call record, no log line, no timers; an asyncio ``Protocol`` (no streams, no task
per call): about the cheapest a Python peer gets. ``bench_ivr.py`` runs the same calls through
it, so "engine − floor" is what the engine itself costs and "floor / dialplan" is what FastAGI
costs before any engine code runs.

Usage: python agi_floor.py   (prints "ready <port>" once listening; ends when stdin closes)
"""

from __future__ import annotations

import asyncio
import sys

GREETING = b'STREAM FILE "ivr12345/welcome_12345" "0123456789*#"\n'
ROUTE = "IVR_QUEUE=general,IVR_QUEUE_PRIORITY=0,IVR_ROUTE=queue"
REQUEST_TYPE = {b"49": "consult", b"50": "complaint", b"51": "suggestion"}  # keys 1, 2, 3 (main.yaml)


class FloorSession(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.step = "environment"

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.step == "environment":
            if b"\n\n" in self.buffer:
                self.buffer, self.step = b"", "greeting"
                self.transport.write(GREETING)
            return
        while b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            if line.startswith(b"100 "):  # "Trying..." before an EXEC result
                continue
            if self.step == "greeting":  # "200 result=<ASCII code of the key> endpos=..."
                key = line.partition(b"result=")[2].split(b" ")[0]
                pairs = f"REQUEST_TYPE={REQUEST_TYPE[key]},{ROUTE}" if key in REQUEST_TYPE else ROUTE
                self.step = "route"
                self.transport.write(f'EXEC MSet "{pairs}"\n'.encode())
            else:
                self.transport.close()
                return


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorSession, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
