"""The audit log page: admins read it (newest first, every kind of action), nobody else opens
it, and nothing in the console writes to it but the actions themselves."""

from __future__ import annotations

from ivr.testbed.browser import Browser
from ivr.testbed.console import ConsoleSite


def test_only_admins_read_the_audit_log_and_nobody_edits_it(browser: Browser, console: ConsoleSite) -> None:
    for role in ("supervisor", "agent"):
        browser.at(console.url).sign_in(console.account(role)).open("/audit")
        assert browser.text("#error-title") == "无权访问", role
    admin = console.account("admin")
    browser.at(console.url).sign_in(admin).open("/audit")
    rows = browser.all("#audit tbody tr")
    newest = rows[0].text
    assert "console sign-in" in newest and f"{admin.name}@console" in newest
    assert len(rows) == len(console.audit())
    lines = len(console.audit())
    for method in ("POST", "PUT", "DELETE"):
        assert browser.fetch("/audit", method)["status"] == 405, method
    assert len(console.audit()) == lines
