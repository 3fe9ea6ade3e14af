"""A desk's seat action against the bed's real Asterisk cannot blank the admin's audit page
(issue 17, finding 2): the reason field of a seat action that Asterisk carries out goes into the
audit log, whatever characters it holds."""

from __future__ import annotations

from testbed.bed import TestBed
from testbed.console import LINE_BREAKERS, ConsoleSite, admin_audit_page, http_client, shows_every_line, sign_in_http

AGENT = "agent1001"


async def test_a_seat_reason_does_not_blank_the_audit_page(engine: TestBed, console: ConsoleSite) -> None:
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("agent", AGENT))
        for reason in LINE_BREAKERS:  # an unpause Asterisk carries out, with a reason the form never offers
            async with http.post(f"{console.url}/desk/{AGENT}/seat", data={"action": "unpause", "reason": reason},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                assert reply.status == 200, await reply.text()
    shows_every_line(console, await admin_audit_page(console))
    seat = [e.what["reason"] for e in console.audit() if e.command == "desk seat" and e.what.get("action") == "unpause"]
    assert set(LINE_BREAKERS) <= set(seat)
