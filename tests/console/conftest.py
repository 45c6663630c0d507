"""The console in a real browser: headless Debian chromium driven by selenium.

The server runs for real (aiohttp on a free port, SQLite, its scheduler, the simulator as
the telephone network) in a thread with its own event loop, so that the blocking selenium
calls of a test never stall it. ``console.run(coro)`` runs a coroutine on that loop (to
create notifications, tell the simulator who answers, read the store).

Every page a test looks at can be kept with ``browser.shot("name")``; when a test fails its
current page is captured too and the failure names the page (title and URL) and the file.
Screenshots go to ``$TMPDIR/ivr-console-screenshots/<test>/`` (or $IVR_CONSOLE_SCREENSHOTS).

Waiting is ``browser.wait_for(...)`` with conditions that find elements again on each try
(no stale elements, no sleeps).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from ivr.calls.services import SpeechRecognizer
from ivr.config import Settings
from ivr.outbound.service import NotificationService
from ivr.store import Store
from ivr.telephony.simulator import Simulator, SimulatorSettings
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, create_app
from ivr.web.console.passwords import hash_password
from ivr.web.keys import SERVICES
from tests.conftest import DIALPLANS, FSDD

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
API_TOKEN = "console-test-api-token"
USER = "alice"
PASSWORD = "alice-console-password"
WAIT_SECONDS = 30.0
SCREENSHOTS = Path(tempfile.gettempdir()) / "ivr-console-screenshots"

T = TypeVar("T")


@dataclass
class ConsoleServer:
    """``ivr serve`` in a thread: the URL, its app, and a way into its event loop."""

    url: str
    app: web.Application
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` on the server's loop (the simulator and services are not thread-safe)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    @property
    def simulator(self) -> Simulator:
        return self.app[SIMULATOR]

    @property
    def notifications(self) -> NotificationService:
        return self.app[OUTBOUND].notifications

    @property
    def store(self) -> Store:
        return self.app[SERVICES].store


def console_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "simulator", "public_url": url,
        "database_url": f"sqlite:///{tmp_path}/ivr.db", "dialplans": DIALPLANS,
        "audio_dir": tmp_path / "audio", "var_dir": tmp_path / "var",
        "call_window": "00:00-24:00", "optional_call_window": "00:00-24:00",
        "default_timezone": "UTC", "scheduler_interval": 0.05, "calls_per_second": 50,
        "api_token": API_TOKEN, "console_users": {USER: _password_hash()},
    }  # fmt: skip
    values.update(overrides)
    return Settings(**values)


_HASH: list[str] = []


def _password_hash() -> str:
    if not _HASH:  # scrypt costs ~50 ms: once per test session
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def start_console_server(
    tmp_path: Path,
    pace: float = 0.05,
    recognizer: SpeechRecognizer | None = None,
    **overrides: Any,
) -> tuple[ConsoleServer, Callable[[], None]]:
    """A server thread; call the second value to stop it."""
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    parts = AppParts(simulator_audio=[FSDD], warm_up=False)
    if recognizer is not None:
        parts.recognizer = recognizer
    app = create_app(console_settings(tmp_path, url, **overrides), url, parts)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
            app[SIMULATOR].settings = SimulatorSettings(pace=pace)
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="console-server", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise failure[0]

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)

    return ConsoleServer(url, app, loop), stop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "console_server(**kwargs): arguments of start_console_server for this test"
    )


@pytest.fixture
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleServer]:
    marker = request.node.get_closest_marker("console_server")
    server, stop = start_console_server(tmp_path, **(marker.kwargs if marker else {}))
    try:
        yield server
    finally:
        stop()


@dataclass
class Browser:
    """A chromium window on the console, with waits and screenshots."""

    driver: webdriver.Chrome
    base_url: str
    shots: Path
    taken: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def shot(self, name: str) -> Path:
        """Keep a screenshot of the current page as ``NN-name.png``."""
        self.shots.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"
        file = self.shots / f"{len(self.taken) + 1:02d}-{safe}.png"
        self.driver.save_screenshot(str(file))
        self.taken.append(file)
        return file

    def wait_for(
        self, condition: Callable[[webdriver.Chrome], T], what: str, timeout: float = WAIT_SECONDS
    ) -> T:
        """Until ``condition`` returns something truthy (re-evaluated from scratch each try).

        On a timeout the message names the page and ``what`` was awaited."""
        wait = WebDriverWait(
            self.driver, timeout, poll_frequency=0.2,
            ignored_exceptions=(StaleElementReferenceException,),
        )  # fmt: skip
        try:
            return wait.until(condition)
        except WebDriverException as exc:
            raise AssertionError(
                f"waited {timeout:.0f}s on {self.page_name()} for {what}: {exc.msg}"
            ) from exc

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text_of(self, css: str) -> str:
        """The visible text of the first element matching ``css`` (re-found on each call)."""
        return str(self.find(css).text)

    def wait_text(
        self, css: str, expected: str | re.Pattern[str], timeout: float = WAIT_SECONDS
    ) -> str:
        """Until the element at ``css`` shows ``expected`` (a substring or a pattern)."""

        def shows(driver: webdriver.Chrome) -> str | None:
            elements = driver.find_elements(By.CSS_SELECTOR, css)
            text = " ".join(str(e.text) for e in elements)
            if isinstance(expected, str):
                return text if expected in text else None
            return text if expected.search(text) else None

        return self.wait_for(shows, f"{css} to show {expected!r}", timeout)

    def page_name(self) -> str:
        try:
            return f"page {self.driver.title!r} at {self.path}"
        except WebDriverException:
            return "an unknown page (the browser is gone)"

    def console_errors(self) -> list[str]:
        """Messages the page logged as errors (CSP violations, failed scripts)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")
        ]

    def submit(self, form_css: str) -> None:
        self.find(form_css + " [type=submit]").click()

    def sign_in(self, user: str = "", password: str = API_TOKEN) -> None:
        self.open("/console/sign-in")
        self.wait_for(lambda d: d.find_elements(By.NAME, "password"), "the sign-in form")
        self.find("input[name=user]").clear()
        if user:
            self.find("input[name=user]").send_keys(user)
        self.find("input[name=password]").send_keys(password)
        self.submit("#sign-in-form")


def _chromium_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1366,900", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
        "--no-first-run", "--disable-extensions", "--disable-background-networking",
        "--lang=en-US",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One browser for the session (starting chromium costs seconds); tests clear cookies."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: the console tests need Debian's chromium and "
            "chromium-driver (make system-packages installs them)"
        )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=_chromium_options())
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """A folder of its own (pytest's basetemp is pruned by any other pytest run as root)."""
    folder = Path(os.environ.get("IVR_CONSOLE_SCREENSHOTS") or SCREENSHOTS)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def browser(
    request: pytest.FixtureRequest,
    chromium: webdriver.Chrome,
    console: ConsoleServer,
    screenshots: Path,
) -> Iterator[Browser]:
    """A signed-out browser on ``console`` (no cookies from an earlier test)."""
    # Cookies belong to the host, not the port: every test's server is 127.0.0.1, so all of
    # them are cleared (delete_all_cookies only clears the current page's).
    chromium.get("about:blank")
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.get_log("browser")  # drop what earlier tests logged
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    result = Browser(chromium, console.url, screenshots / name)
    request.node.console_browser = result
    yield result
    # Leave the page before the server stops, so no EventSource reconnects to a dead port.
    chromium.get("about:blank")
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})


@pytest.fixture
def signed_in(browser: Browser) -> Browser:
    """``browser`` signed in with the API token, on the console's first page."""
    browser.sign_in()
    browser.wait_for(
        lambda d: (
            "/console/sign-in" not in d.current_url and d.find_elements(By.CSS_SELECTOR, "nav")
        ),
        "the console after signing in",
    )
    return browser


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """A failing console test names the page it was on and keeps a screenshot of it."""
    outcome = yield
    report = outcome.get_result()
    browser: Browser | None = getattr(item, "console_browser", None)
    if browser is None or report.when != "call" or not report.failed:
        return
    try:
        file = browser.shot("FAILED")
        where = f"{browser.page_name()}; screenshot {file}"
    except WebDriverException as exc:
        where = f"{browser.page_name()} (no screenshot: {exc.msg})"
    report.sections.append(("console page", where))
    report.longrepr = f"{report.longrepr}\n\nFailed on {where}"


@dataclass
class Receiver:
    """The integrator's endpoint for result webhooks, on the server's loop."""

    url: str
    received: list[dict[str, Any]]


@pytest.fixture
def results(console: ConsoleServer) -> Iterator[Receiver]:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/results", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = unused_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, port

    runner, port = console.run(start())
    try:
        yield Receiver(f"http://127.0.0.1:{port}/results", received)
    finally:
        console.run(runner.cleanup())
