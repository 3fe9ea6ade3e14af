"""The audit log page: admins read it (newest first, every kind of action), nobody else opens
it, and nothing in the console writes to it but the actions themselves."""

from __future__ import annotations

import re

from testbed.browser import Browser
from testbed.console import LINE_BREAKERS, ConsoleSite, admin_audit_page, http_client, shows_every_line, sign_in_http
from tickets.export import local_time


def test_only_admins_read_the_audit_log_and_nobody_edits_it(browser: Browser, console: ConsoleSite) -> None:
    for role in ("supervisor", "agent"):
        browser.at(console.url).sign_in(console.account(role)).open("/audit")
        assert browser.text("#error-title") == "无权访问", role
    admin = console.account("admin")
    browser.at(console.url).sign_in(admin).open("/audit")
    rows = browser.all("#audit tbody tr")
    newest = rows[0].text
    assert "控制台登录" in newest and f"{admin.name}@console" in newest
    at = console.audit()[-1].at  # the file keeps UTC; the page shows the tickets' local time
    assert local_time(at) in newest and "T" not in newest.split()[1]
    assert len(rows) == len(console.audit())
    lines = len(console.audit())
    for method in ("POST", "PUT", "DELETE"):
        assert browser.fetch("/audit", method)["status"] == 405, method
    assert len(console.audit()) == lines


async def test_hostile_sign_in_names_do_not_blank_the_audit_page(console: ConsoleSite) -> None:
    async with http_client() as http:  # nobody signed in
        async with http.get(console.url + "/login") as form:
            token = re.search(r'name="_csrf" value="([^"]+)"', await form.text())
        assert token
        for name in LINE_BREAKERS:
            async with http.post(console.url + "/login", data={"user": name, "password": "not the password",
                                                               "_csrf": token[1]}) as reply:
                assert reply.status == 401
    page = await admin_audit_page(console)
    shows_every_line(console, page)
    assert sum(f"{name}@console" in e.user for e in console.audit() for name in LINE_BREAKERS) == len(LINE_BREAKERS)


async def test_an_unmask_reason_and_a_transfer_target_do_not_blank_the_audit_page(console: ConsoleSite) -> None:
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("supervisor"))
        for reason in LINE_BREAKERS:  # a supervisor hiding their own unmasking
            async with http.post(console.url + "/tickets/export.csv", data={"reason": reason, "_csrf": csrf}) as reply:
                assert reply.status == 200
    async with http_client() as http:
        csrf = await sign_in_http(http, console, console.account("agent"))
        for target in LINE_BREAKERS:
            async with http.post(console.url + "/desk/agent1001/transfer", data={"target": target},
                                 headers={"X-CSRF-Token": csrf, "Accept": "application/json"}) as reply:
                assert reply.status == 400
    page = await admin_audit_page(console)
    shows_every_line(console, page)
    entries = console.audit()
    assert sorted(e.reason for e in entries if e.command == "console tickets export" and e.reason in LINE_BREAKERS) == sorted(LINE_BREAKERS)
    assert sorted(e.what["target"] for e in entries if e.command == "desk transfer" and e.what.get("target") in LINE_BREAKERS) \
        == sorted(LINE_BREAKERS)


async def test_a_broken_line_shows_as_unreadable_and_hides_nothing_after_it(console: ConsoleSite) -> None:
    async with http_client() as http:  # a line before the broken one
        async with http.get(console.url + "/login") as form:
            token = re.search(r'name="_csrf" value="([^"]+)"', await form.text())
        assert token
        async with http.post(console.url + "/login", data={"user": "before-broken", "password": "x" * 12, "_csrf": token[1]}):
            pass
    with open(console.audit_log, "ab") as log:
        log.write(b'{"at": "2026-12-01T00:00:00+00:00", "user": \n')  # edited by hand, or cut by a full disk
    page = await admin_audit_page(console)  # its sign-in: a line after the broken one
    shows_every_line(console, page)
    newest, broken, older = (page.index(f"{console.account('admin').name}@console"),
                             page.index('<tr class="unreadable'), page.index("before-broken@console"))
    assert newest < broken < older  # newest first: every line on both sides of it is shown
