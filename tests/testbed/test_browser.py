"""The session's Chromium moves from console to console: a console that is gone by the next test
(a module's own bed torn down, or killed by a failed test) must not fail every later test."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from testbed.browser import Browser


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        # only the page sets the cookie: Chromium asks for /favicon.ico on its own, at a moment
        # of its choosing, which would set it again after at() cleared it (seen in a full run)
        if self.path != "/static/console.css":
            self.send_error(404)
            return
        body = b"body{}"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Set-Cookie", f"session={self.server.server_address[1]}; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_next_console_opens_after_the_last_one_is_gone_and_no_cookie_of_either_is_kept(chromium: Browser) -> None:
    with site() as first:
        chromium.at(first)
        chromium.driver.get(first + "/static/console.css")
        assert [c["name"] for c in chromium.driver.get_cookies()] == ["session"]
    with site() as second:  # the first site is gone now
        chromium.at(second)
        assert chromium.driver.current_url == second + "/static/console.css"
        assert chromium.driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"] == [], "neither site's cookie"
        chromium.driver.get(second + "/static/console.css")
        assert [c["value"] for c in chromium.driver.get_cookies()] == [second.rsplit(":", 1)[1]]
