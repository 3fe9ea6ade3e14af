"""The engine serves the console (``ivr serve``, ``web.port``): a supervisor signs in to the
bed's engine in a real Chromium, the session lives in the bed's Redis."""

from __future__ import annotations

import redis

from ivr.store import keyspace
from testbed.bed import TestBed
from testbed.browser import Browser
from testbed.console import ConsoleSite


def test_the_engine_serves_the_console(engine: TestBed, browser: Browser, console: ConsoleSite) -> None:
    supervisor = console.account("supervisor")
    browser.sign_in(supervisor)
    assert browser.find("#whoami").get_attribute("data-user") == supervisor.name
    session_id = browser.driver.get_cookie("ivr_session")["value"]
    client = redis.Redis.from_url(console.redis_url, decode_responses=True)
    try:
        assert client.hget(keyspace.console_session(session_id), "user") == supervisor.name
        assert 0 < client.ttl(keyspace.console_session(session_id)) <= 30 * 60
    finally:
        client.close()
