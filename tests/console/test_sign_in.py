"""Signing in to the console in a real browser, and what is refused without a session."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import aiohttp
from selenium.webdriver.common.by import By

from tests.console.conftest import PASSWORD, USER, Browser, ConsoleServer


def test_the_api_token_signs_in_and_a_wrong_one_is_refused(browser: Browser) -> None:
    browser.sign_in(password="not-the-token")
    browser.wait_text("#sign-in-error", "Wrong user name, password or token")
    browser.shot("sign-in-refused")
    assert browser.path.startswith("/console/sign-in")
    assert not browser.driver.get_cookie("ivr_console")
    assert all("401 (Unauthorized)" in error for error in browser.console_errors())

    browser.sign_in()
    browser.wait_text("header.top nav", "Live calls")
    browser.shot("signed-in")
    assert browser.path == "/console/campaigns"
    cookie = browser.driver.get_cookie("ivr_console")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # the public URL is http here
    assert browser.text_of(".sign-out .who") == "API token"
    assert browser.console_errors() == []


def test_a_user_signs_in_with_a_password_and_out_again(browser: Browser) -> None:
    browser.sign_in(USER, "wrong-password")
    browser.wait_text("#sign-in-error", "Wrong")
    browser.sign_in(USER, PASSWORD)
    browser.wait_text(".sign-out .who", USER)
    browser.submit(".sign-out")
    browser.wait_for(lambda d: d.find_elements(By.ID, "sign-in-form"), "the sign-in form")
    browser.open("/console/calls")
    browser.wait_for(lambda d: d.find_elements(By.ID, "sign-in-form"), "the sign-in form")
    # Signed out: the page asked for sends the browser back to the sign-in form.
    assert browser.path.startswith("/console/sign-in")
    assert not browser.find_all(".sign-out")


def test_a_page_asked_for_before_signing_in_opens_after_it(browser: Browser) -> None:
    browser.open("/console/notifications?status=done")
    browser.wait_for(lambda d: d.find_elements(By.ID, "sign-in-form"), "the sign-in form")
    browser.find("input[name=password]").send_keys("console-test-api-token")
    browser.submit("#sign-in-form")
    # The sign-in page's own URL names the page asked for (?next=...), so wait for the path
    # itself: a substring test passed on the sign-in page when the submit was slow.
    wanted = "/console/notifications?status=done"
    browser.wait_for(lambda _: browser.path == wanted, "the page asked for")
    assert not browser.find_all("#sign-in-form")


async def _fetch(
    url: str, method: str = "GET", cookies: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession(cookies=cookies) as http,
        http.request(method, url, allow_redirects=False, **kwargs) as response,
    ):
        return response.status, dict(response.headers), await response.text()


def test_nothing_is_readable_without_a_session(console: ConsoleServer) -> None:
    status, headers, _ = console.run(_fetch(console.url + "/console/calls"))
    assert status == 303
    assert unquote(headers["Location"]) == "/console/sign-in?next=/console/calls"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, _, _ = console.run(_fetch(console.url + "/console/events/calls"))
    assert status == 401
    status, _, _ = console.run(
        _fetch(console.url + "/console/calls", headers={"Accept": "text/event-stream"})
    )
    assert status == 401
    forged = {"ivr_console": "eyJ1IjpudWxsfQ.forged"}
    status, _, _ = console.run(_fetch(console.url + "/console/calls", cookies=forged))
    assert status == 303
    # The sign-in page and the stylesheet are the only public things.
    status, headers, body = console.run(_fetch(console.url + "/console/sign-in"))
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<script>" not in body
    status, _, _ = console.run(_fetch(console.url + "/console/static/console.css"))
    assert status == 200


def test_a_change_without_the_csrf_token_is_refused(
    signed_in: Browser, console: ConsoleServer
) -> None:
    session = {"ivr_console": signed_in.driver.get_cookie("ivr_console")["value"]}
    csrf = signed_in.find("body").get_attribute("data-csrf")
    for path in ("/console/campaigns/any/pause", "/console/campaigns", "/console/contacts"):
        status, _, body = console.run(_fetch(console.url + path, "POST", session, data={}))
        assert status == 403, path
        assert "CSRF" in body
    # A token sent by another session does not count either.
    other = {"ivr_console": session["ivr_console"][:-2] + "xx"}
    status, _, _ = console.run(
        _fetch(console.url + "/console/sign-out", "POST", other, data={"csrf": csrf})
    )
    assert status == 303  # a forged cookie is no session: off to the sign-in form, not done
    url = console.url + "/console/sign-out"
    status, _, body = console.run(_fetch(url, "POST", session, data={}))
    assert status == 403
    assert "CSRF" in body
    status, _, _ = console.run(_fetch(url, "POST", session, data={"csrf": "wrong"}))
    assert status == 403
    status, headers, _ = console.run(_fetch(url, "POST", session, data={"csrf": csrf}))
    assert status == 303
    assert headers["Location"] == "/console/sign-in"
