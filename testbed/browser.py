"""A real headless Chromium for browser tests (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium; never a browser downloaded at test time).

A missing browser is an error, never a skip: :func:`start_chromium` raises :class:`BrowserMissing`
with the apt-get line that fixes it. :class:`Browser` adds what console tests need on top of
the WebDriver: pages by path, signing in as an account, waiting for an element or a text.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Callable

from testbed.runners import TestbedError

CHROMIUM = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("IVR_CHROMEDRIVER", "/usr/bin/chromedriver")


class BrowserMissing(TestbedError):
    """Chromium or its driver is not installed."""


FAKE_MIC_HZ = 1200  # what the fake microphone says (the desk page's web phone, tests/integration/test_console_web_phone.py)


def fake_microphone(path: Path, freq: float = FAKE_MIC_HZ, seconds: float = 1.0) -> Path:
    """A WAV of a steady tone, which Chromium loops as its microphone: the far end of a web-phone
    call can tell by frequency that the agent's voice reached it (testbed/rtp.py)."""
    import math
    import struct
    import wave

    rate = 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
                               for i in range(int(rate * seconds))))
    return path


def start_chromium(profile: Path, microphone: bool = True) -> Any:
    """A headless Chromium WebDriver with its own profile directory (helpers run side by side);
    fake media devices, the microphone granted without a prompt, saying :data:`FAKE_MIC_HZ`
    (``microphone=False``: refused, as by a person clicking 阻止)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            raise BrowserMissing(f"{path} is missing: apt-get install chromium chromium-driver "
                                 f"(./run installs them; the {package} package)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=zh-CN", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={profile}", "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream" + ("" if microphone else "=deny"),
                f"--use-file-for-fake-audio-capture={fake_microphone(profile / 'microphone.wav')}"):
        options.add_argument(arg)
    # an explicit driver path: Selenium Manager (which would download one) is never asked
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


# the desk page's web phone's media, from its RTCPeerConnection's getStats() (None: no call)
PHONE_STATS = """
const done = arguments[arguments.length - 1];
const pc = window.ivrDeskPhone && window.ivrDeskPhone.connection();
if (!pc) { done(null); return; }
pc.getStats().then(report => {
  const out = {};
  report.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { out.packetsReceived = s.packetsReceived; out.energy = s.totalAudioEnergy; }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') { out.packetsSent = s.packetsSent; }
    if (s.type === 'codec') { (out.codecs = out.codecs || []).push(s.mimeType); }
  });
  done(out);
});
"""


class Browser:
    """One Chromium, pointed at one console (``base``) at a time."""

    def __init__(self, driver: Any, base: str = ""):
        self.driver = driver
        self.base = base

    def at(self, base: str) -> "Browser":
        """Fresh for a test: no cookies of any site, pointed at ``base``. Not by visiting the site
        before: a module's own console may be gone by now, and every later test would fail on it."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.base = base
        self.driver.get(base + "/static/console.css")
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        return self

    def open(self, path: str) -> "Browser":
        self.driver.get(self.base + path)
        return self

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str = "body") -> str:
        return str(self.find(css).text)

    def staff_text(self, css: str = "body") -> str:
        """The text staff read as Mandarin (testbed/wording.py checks it): a technical detail the
        page marks ``lang="en"`` (an English reason kept as written for the admin) left out."""
        hide = "document.querySelectorAll('[lang=\"en\"]').forEach(e => { e.style.display = arguments[0]; });"
        self.driver.execute_script(hide, "none")
        try:
            return self.text(css)
        finally:
            self.driver.execute_script(hide, "")

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10.0) -> Any:
        """Until ``condition(driver)`` is truthy (WebDriverWait: polls the page, no bare sleep)."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def wait_for(self, css: str, timeout: float = 10.0) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def wait_text(self, css: str, text: str, timeout: float = 10.0) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), timeout)

    def submit(self, css: str, element: Any = None, timeout: float = 60.0) -> "Browser":
        """Click a submit button (``css``, or ``element``) and wait until the next page replaced this
        one (a publish compiles the config twice: generous on a loaded machine).

        The old document is marked from script and the wait is for a complete document without the
        mark: while Chromium swaps documents, a node lookup may fail with "does not belong to the
        document" rather than the stale-element error, so those errors only mean "not yet"."""
        from selenium.common.exceptions import WebDriverException

        self.driver.execute_script("window.__ivrOldPage = true")
        (element or self.find(css)).click()

        def replaced(driver: Any) -> bool:
            try:
                return bool(driver.execute_script(
                    "return window.__ivrOldPage === undefined && document.readyState === 'complete'"))
            except WebDriverException:
                return False

        self.wait(replaced, timeout)
        return self

    def fetch(self, path: str, method: str = "GET", form: dict[str, str] | None = None) -> dict[str, Any]:
        """An HTTP request from the page itself, with its cookies (and, for writes, the page's CSRF
        token): ``{"status": 403, "text": "…"}`` — what the page's own script would get."""
        return dict(self.driver.execute_async_script("""
            const [path, method, form, done] = arguments;
            const meta = document.querySelector('meta[name=csrf-token]');
            const init = {method, headers: method === 'GET' || !meta ? {} : {'X-CSRF-Token': meta.content}};
            if (form) init.body = new URLSearchParams(form);
            fetch(path, init).then(async r => done({status: r.status, text: await r.text()}));
        """, path, method, form))

    def sign_in(self, account: Any, password: str | None = None) -> "Browser":
        """Through the sign-in form, as a person would; ends on the page it leads to."""
        self.open("/login")
        self.fill("#user", account.name)
        self.fill("#password", password if password is not None else account.password)
        return self.submit("#sign-in")

    def sign_out(self) -> None:
        self.submit("header .signout button")

    def quit(self) -> None:
        self.driver.quit()


async def phone_stats(browser: Browser) -> dict[str, Any]:
    """The web phone's audio counters (:data:`PHONE_STATS`): packets in and out, the energy heard."""
    return dict(await asyncio.to_thread(browser.driver.execute_async_script, PHONE_STATS) or {})


async def phone_flowing(browser: Browser) -> dict[str, Any] | None:
    """The counters once audio flows both ways in the page's call (None before)."""
    s = await phone_stats(browser)
    return s if s.get("packetsSent") and s.get("packetsReceived") else None
