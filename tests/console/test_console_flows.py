"""Flows in a real Chromium, on the console of its own: a broken draft is refused with its
file:line and nothing changes; a good one is published atomically, reloaded, kept as a
version and rolled back; supervisors look, check drafts and simulate, agents cannot open the pages."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from ivr.core.calendar import load_calendar
from testbed.browser import Browser
from testbed.console import ConsoleSite
from testbed.hostile import ISSUE_BOMB, KIB_BOMB, inject_title
from testbed.memory import peak_kib, reset_peak, rss_kib
from testbed.wording import english_words

LEVEL2_ZERO = '      "0": agent               # 0 reaches a seat from every menu (the lint checks it)\n'


def put_yaml(browser: Browser, text: str) -> None:
    """Replace the textarea's content (as pasting a whole file would)."""
    browser.driver.execute_script("arguments[0].value = arguments[1]", browser.find("#yaml"), text)


def test_admin_publishes_and_rolls_back_a_flow(browser: Browser, console: ConsoleSite, console_config: Path) -> None:
    path = console_config / "flows" / "sample.yaml"
    original = path.read_text(encoding="utf-8")
    browser.sign_in(console.account("admin"))
    browser.open("/flows/flows/sample.yaml")
    live = browser.text("#live-version")
    assert browser.find("#yaml").get_attribute("value") == original

    broken = original.replace('    repeat_key: "9"\n', '    repeat_key: "9"\n    colour: red\n')
    line = original[: original.index('    repeat_key: "9"\n')].count("\n") + 2
    put_yaml(browser, broken)
    browser.submit("#publish")
    assert browser.find("#result").get_attribute("data-ok") == "false"
    assert f"flows/sample.yaml:{line}:5: 未知的配置项 'colour'" in browser.text("#problems")  # the reason in Mandarin
    assert str(console_config.resolve()) not in browser.text("#problems")  # no server paths to staff
    assert browser.text("#live-version") == live and path.read_text(encoding="utf-8") == original

    put_yaml(browser, original.replace(LEVEL2_ZERO, '      "0": experts\n'))
    browser.submit("#publish")
    assert browser.find("#result").get_attribute("data-ok") == "true", browser.text("#result")
    new = browser.text("#live-version")
    assert new.split("-")[0] != live.split("-")[0]
    assert '"0": experts' in path.read_text(encoding="utf-8")
    assert "从接听到人工最长" in browser.text("#report")  # the ivr check report of the published set, in Mandarin
    year = datetime.now().year  # and the engine's warnings: this year's and next year's holidays, when not official
    warned = [y for y in (year, year + 1) if load_calendar().coverage_warning(y)]
    shown = [li.text for li in browser.all("#warnings li")]
    assert len(shown) == len(warned) and all(t.startswith(f"警告：{y} 年节假日日历") for t, y in zip(shown, warned)), shown
    assert not english_words(browser.staff_text("#warnings") if shown else "", ["chinesecalendar"]), shown

    rows = browser.all("#versions tbody tr")
    assert len(rows) == 2 and "发布前的原文件" in rows[1].text
    browser.submit("", rows[1].find_element("css selector", "button.rollback"))
    assert browser.find("#result").get_attribute("data-ok") == "true"
    assert path.read_text(encoding="utf-8") == original
    assert browser.text("#live-version").split("-")[0] == live.split("-")[0]
    actions = [(e.command, e.what["outcome"]) for e in console.audit() if e.command.startswith("console flow")]
    assert actions[-3:] == [("console flow publish", "refused"), ("console flow publish", "published"),
                            ("console flow rollback", "published")]


def test_supervisor_checks_a_draft_and_simulates_but_cannot_publish(browser: Browser, console: ConsoleSite) -> None:
    browser.sign_in(console.account("supervisor"))
    browser.open("/flows")
    assert "flows/main.yaml" in browser.text("#files") and "numbers.yaml" in browser.text("#files")
    assert re.search(r"main\s+\d+(\.\d+)? 秒", browser.text("#timings"))  # worst case to a human, as ivr check
    browser.open("/flows/flows/main.yaml")
    assert not browser.all("#publish") and not browser.find("#yaml").get_attribute("readonly")
    live = browser.text("#live-version")
    original = browser.find("#yaml").get_attribute("value")
    browser.fill("#yaml", original.replace("\nnodes:\n", "\ncolour: red\nnodes:\n", 1))  # a draft, typed
    browser.submit("#check")
    assert browser.find("#result").get_attribute("data-ok") == "false"
    assert re.search(r"flows/main\.yaml:\d+:1: 未知的配置项 'colour'", browser.text("#problems"))
    assert browser.text("#live-version") == live
    put_yaml(browser, original)
    browser.submit("#check")
    assert browser.find("#result").get_attribute("data-ok") == "true"
    # the unchanged file checks as the live content (the browser's CRLF lines are the file's LF ones)
    assert f"版本 {live.split('-')[0]}-" in browser.text("#report")
    browser.open("/flows/simulate?number=8000&keys=1,0")
    simulated = browser.text("#simulation")
    assert "去向：转人工排队 " in simulated and "general" not in simulated  # queues by their display names


def test_an_agent_cannot_open_a_flow(browser: Browser, console: ConsoleSite) -> None:
    browser.sign_in(console.account("agent"))
    for page in ("/flows", "/flows/flows/main.yaml", "/flows/simulate?number=12345"):
        browser.open(page)
        assert browser.text("#error-title") == "无权访问", page
        assert browser.fetch(page)["status"] == 403, page
    publish = browser.fetch("/flows/flows/main.yaml/publish", "POST", {"text": "title: x\n"})
    assert publish["status"] == 403


def test_a_number_plan_change_is_checked_and_audited(browser: Browser, console: ConsoleSite, console_config: Path) -> None:
    path = console_config / "numbers.yaml"
    original = path.read_text(encoding="utf-8")
    browser.sign_in(console.account("admin")).open("/flows/numbers.yaml")
    put_yaml(browser, original.replace("plan: anhui-2021", "plan: atlantis"))
    browser.submit("#publish")
    assert "号码计划 'atlantis' 不存在" in browser.text("#problems")
    assert path.read_text(encoding="utf-8") == original
    entry = console.audit()[-1]
    assert (entry.command, entry.what["file"], entry.what["outcome"]) == ("console number-plan publish", "numbers.yaml", "refused")


def test_a_publish_without_its_csrf_token_changes_nothing(browser: Browser, console: ConsoleSite,
                                                          console_config: Path) -> None:
    path = console_config / "flows" / "sample.yaml"
    original = path.read_text(encoding="utf-8")
    browser.sign_in(console.account("admin")).open("/flows/flows/sample.yaml")
    published = len([e for e in console.audit() if e.command == "console flow publish"])
    put_yaml(browser, original.replace(LEVEL2_ZERO, '      "0": experts\n'))
    browser.driver.execute_script("document.querySelector('#edit-form input[name=_csrf]').remove()")
    browser.submit("#publish")
    assert browser.text("#error-title") == "无权访问" and "CSRF" in browser.text("#error-message")
    assert path.read_text(encoding="utf-8") == original
    assert len([e for e in console.audit() if e.command == "console flow publish"]) == published


@pytest.mark.parametrize("bomb", [ISSUE_BOMB, KIB_BOMB], ids=["issue-387-bytes", "1-KiB"])
def test_a_supervisors_alias_bomb_is_refused_by_the_check_without_growing_the_console(
        browser: Browser, console: ConsoleSite, console_config: Path, bomb: str) -> None:
    """The console serves from this process (StandaloneConsole): its peak RSS during the check
    is the serving process's."""
    browser.sign_in(console.account("supervisor")).open("/flows/flows/main.yaml")
    live = browser.text("#live-version")
    put_yaml(browser, bomb)  # the textarea is read-only for a supervisor; a request is not
    reset_peak(os.getpid())
    before = rss_kib(os.getpid())
    browser.submit("#check")
    assert browser.find("#result").get_attribute("data-ok") == "false"
    assert "flows/main.yaml:2:5: 不允许使用 YAML 锚点或别名 &l0" in browser.text("#problems")
    assert peak_kib(os.getpid()) - before < 8 * 1024  # a few MiB at most (the old check took GiBs)
    assert browser.text("#live-version") == live


def test_a_published_number_plan_may_not_carry_other_configuration(browser: Browser, console: ConsoleSite,
                                                                   console_config: Path) -> None:
    """``tracking:`` is set nowhere else, so a plain check accepts it: the plan's file must not."""
    path = console_config / "numbers.yaml"
    original = path.read_text(encoding="utf-8")
    browser.sign_in(console.account("admin")).open("/flows/numbers.yaml")
    put_yaml(browser, original + "tracking: {cdr_file: /etc/shadow}\n")
    browser.submit("#publish")
    line = original.count("\n") + 1
    assert (f"numbers.yaml:{line}:1: 号码计划文件只能包含 plan、numbers，"
            "不能包含配置段 'tracking'") in browser.text("#problems")
    assert path.read_text(encoding="utf-8") == original


def test_a_plan_whose_title_injects_dialplan_is_refused_by_check_and_publish(browser: Browser, console: ConsoleSite,
                                                                             console_config: Path) -> None:
    path = console_config / "plans" / "anhui-2021.yaml"
    original = path.read_text(encoding="utf-8")
    hostile = inject_title(original, "12366")
    line = hostile[: hostile.index('"12366":')].count("\n") + 1
    browser.sign_in(console.account("admin")).open("/flows/plans/anhui-2021.yaml")
    live = browser.text("#live-version")
    for button in ("#check", "#publish"):
        put_yaml(browser, hostile)
        browser.submit(button)
        assert browser.find("#result").get_attribute("data-ok") == "false"
        problems = browser.text("#problems")
        assert f"plans/anhui-2021.yaml:{line}:" in problems and "numbers.12366.title" in problems
        assert "含有控制字符或换行符 U+000A，不允许" in problems
    assert path.read_text(encoding="utf-8") == original and browser.text("#live-version") == live
