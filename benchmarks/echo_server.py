"""The loopback floor for the AGI latency benchmark: a raw asyncio stream server.

For every line it receives it writes back one reply line: the reply given for that request
on the command line, or else the line itself. ``bench_ivr.py`` passes the exact reply Asterisk gave to the same AGI command,
so both directions carry the same message sizes as the AGI path. It runs as its own process,
like Asterisk, so a round trip crosses two processes and loopback TCP in both cases.

Usage: python echo_server.py [REQUEST_HEX:REPLY_HEX ...]   (prints "ready <port>" once listening)
"""

from __future__ import annotations

import asyncio
import sys


async def main(replies: dict[bytes, bytes]) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readuntil(b"\n")
                writer.write(replies.get(line, line))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        # ends when the benchmark closes our stdin (or dies)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    pairs = (arg.split(":") for arg in sys.argv[1:])
    asyncio.run(main({bytes.fromhex(req): bytes.fromhex(rep) for req, rep in pairs}))
