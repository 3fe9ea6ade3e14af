"""Sign-in in a real Chromium: roles see their own menu, a wrong password is refused and
audited, an agent cannot open an admin page, a form without its CSRF token is refused."""

from __future__ import annotations

from testbed.browser import Browser
from testbed.console import ConsoleSite


def test_admin_signs_in_and_sees_the_users(browser: Browser, console: ConsoleSite) -> None:
    admin = console.account("admin")
    browser.open("/users?sort=name&role=admin")
    assert browser.path.startswith("/login")  # not signed in: the sign-in page, then back
    browser.fill("#user", admin.name)
    browser.fill("#password", admin.password)
    browser.submit("#sign-in")
    assert browser.path == "/users?sort=name&role=admin"
    assert admin.name in browser.text("#users")
    assert browser.find("#whoami").get_attribute("data-role") == "admin"
    entry = [e for e in console.audit() if e.user == f"{admin.name}@console"][-1]
    assert entry.command == "console sign-in" and entry.reason == ""
    seat = console.account("agent").agent
    browser.open("/users")  # an admin opens a seat's desk from its user, as from the wallboard
    browser.submit("", browser.find(f'#users a.desk-link[href="/desk/{seat}"]'))
    assert browser.path == f"/desk/{seat}"
    browser.open("/wallboard")  # each seat row of the wallboard links to its desk
    assert browser.find(f'#seats tr[data-agent="{seat}"] a.desk-link').get_attribute("href").endswith(f"/desk/{seat}")


def test_wrong_password_is_refused_and_audited(browser: Browser, console: ConsoleSite) -> None:
    supervisor = console.account("supervisor")
    browser.sign_in(supervisor, "not-the-password")
    assert browser.text("#login-error") == "用户名或密码错误。"
    assert browser.path == "/login"
    entry = console.audit()[-1]
    assert (entry.user, entry.reason) == (f"{supervisor.name}@console", "refused: wrong name or password")


def test_an_agent_cannot_open_an_admin_page(browser: Browser, console: ConsoleSite) -> None:
    agent = console.account("agent")
    browser.sign_in(agent)
    assert browser.find("#whoami").get_attribute("data-user") == agent.name
    assert "用户" not in browser.text("header nav")  # not in the agent's menu ...
    browser.open("/users")
    assert browser.text("#error-title") == "无权访问"  # ... nor reachable by its address
    entry = console.audit()[-1]  # and the attempt is on the audit log
    assert (entry.user, entry.command, entry.what) == (f"{agent.name}@console", "console refused",
                                                       {"method": "GET", "path": "/users"})
    assert entry.reason.startswith("refused: ")


def test_a_form_without_its_csrf_token_is_refused(browser: Browser, console: ConsoleSite) -> None:
    browser.sign_in(console.account("admin"))
    # the page's own sign-out form, its token removed: the browser posts it as a forged page would
    browser.driver.execute_script("document.querySelector('header .signout input[name=_csrf]').remove()")
    browser.submit("header .signout button")
    assert "CSRF" in browser.text("#error-message")
    entry = console.audit()[-1]
    assert (entry.command, entry.what["method"], entry.what["path"]) == ("console refused", "POST", "/logout")
    assert "CSRF" in entry.reason
    browser.open("/")
    assert browser.find("#whoami")  # still signed in: the forged sign-out did nothing
