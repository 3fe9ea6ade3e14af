"""Screenshots of the console for the README (docs/img/), in the headless Chromium of the tests:
a console of its own on a private Redis and a copy of config/, two sample tickets.

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tickets.store import TicketStore  # noqa: E402
from testbed.browser import Browser, start_chromium  # noqa: E402
from testbed.console import StandaloneConsole, private_config, run_sync  # noqa: E402
from testbed.ports import PortAllocator  # noqa: E402
from testbed.processes import start_redis  # noqa: E402
from tickets.model import IvrPath, Ticket, TimelineEntry  # noqa: E402


def sample_tickets(redis_url: str, spool: Path) -> list[str]:
    base = datetime.now().astimezone() - timedelta(minutes=20)

    def at(s: float) -> str:
        return (base + timedelta(seconds=s)).isoformat()

    t = Ticket(linkedid="demo.1", line="12345", caller="13912345678", received=at(0), request_type="complaint",
               request_type_source="ivr", queue="general", wait_seconds=6.0, agent="agent1001", disposition="answered",
               talk_seconds=185, ivr=IvrPath(flow="main", nodes=["main/greeting", "main/menu", "main/general"],
                                             keys=["3"], route="queue"))
    t.timeline = [TimelineEntry(at(0), "received", "12345"), TimelineEntry(at(5), "queue joined", "general position 1"),
                  TimelineEntry(at(9), "agent rung", "agent1001"), TimelineEntry(at(11), "agent connected", "agent1001 after 6.0 s"),
                  TimelineEntry(at(196), "agent completed", "agent1001 talk 185 s (agent)"), TimelineEntry(at(196), "closed", "answered")]
    u = Ticket(linkedid="demo.2", line="12366", caller="05512345678", received=at(60), disposition="transferred",
               ivr=IvrPath(flow="", route="transfer"))

    async def write() -> list[str]:
        store = TicketStore(redis_url, spool, "shots", retention_days=1, caller_key=b"screenshot-caller-key")
        try:
            for x in (t, u):
                await store.write(x, "closed")
            await store.drain()
            return [s.number for s in [await store.get("demo.1")] if s]
        finally:
            await store.close()

    return run_sync(write)


def main() -> None:
    out = REPO / "docs" / "img"
    with tempfile.TemporaryDirectory(prefix="ivr-shots-") as tmp:
        work = Path(tmp)
        config = private_config(REPO / "config", work)
        port = PortAllocator().one()
        redis = start_redis(port, work)
        url = f"redis://127.0.0.1:{port}/0"
        server = StandaloneConsole(config, url, work)
        site = server.start()
        browser = Browser(start_chromium(work / "profile"))
        try:
            browser.driver.set_window_size(1280, 1000)
            [number] = sample_tickets(url, work / "spool")
            browser.at(site.url).sign_in(site.account("admin"))
            for path, name in (("/flows", "console-flows"), ("/flows/flows/main.yaml", "console-flow"),
                               ("/tickets", "console-tickets"), (f"/tickets/{number}", "console-ticket"),
                               ("/audit", "console-audit")):
                browser.open(path)
                if name == "console-flow":
                    browser.submit("#check")
                browser.driver.save_screenshot(str(out / f"{name}.png"))
                print(out / f"{name}.png")
        finally:
            browser.quit()
            server.stop()
            redis.kill()


if __name__ == "__main__":
    main()
