"""A CSV campaign in the browser: uploaded (row errors first), watched to the end through the
simulator, paused and resumed, exported."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from ivr.simulation.scenario import Turn
from ivr.store.models import CALLS, NOTIFICATIONS
from ivr.telephony.simulator import Persona
from ivr.web.app import OUTBOUND
from tests.console.conftest import Browser, ConsoleServer

NUMBERS = [f"+1212555{100 + i:04d}" for i in range(6)]
HEADER = "to,name,clinic,when,timezone\n"


def csv_file(tmp_path: Path, name: str, rows: list[str]) -> str:
    file = tmp_path / name
    file.write_text(HEADER + "".join(row + "\n" for row in rows))
    return str(file)


def upload(browser: Browser, name: str, file: str, calls_per_second: str = "") -> None:
    browser.open("/console/campaigns")
    browser.wait_for(lambda d: d.find_elements(By.ID, "campaign-form"), "the upload form")
    browser.find("#campaign-form input[name=name]").clear()
    browser.find("#campaign-form input[name=name]").send_keys(name)
    browser.find("#campaign-form input[name=calls_per_second]").send_keys(calls_per_second)
    browser.find("#campaign-form input[type=file]").send_keys(file)
    browser.submit("#campaign-form")


async def campaign_calls(console: ConsoleServer, campaign_id: str) -> int:
    """Calls recorded for the campaign's notifications (before the provider is asked)."""
    statement = (
        select(func.count())
        .select_from(CALLS.join(NOTIFICATIONS, NOTIFICATIONS.c.id == CALLS.c.notification_id))
        .where(NOTIFICATIONS.c.campaign_id == campaign_id)
    )
    async with console.store.read() as tx:
        return int((await tx.session.execute(statement)).scalar_one())


def progress_of(browser: Browser) -> tuple[int, int]:
    text = browser.text_of("#campaign .finished")
    match = re.match(r"(\d+) / (\d+) finished", text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


def test_a_csv_campaign_with_bad_rows_is_refused_with_each_error_shown(
    signed_in: Browser, tmp_path: Path
) -> None:
    rows = [
        f"{NUMBERS[0]},Ann,Sunrise Clinic,2026-11-24T10:00,UTC",
        "12345,Ben,Sunrise Clinic,2026-11-24T10:00,UTC",
        f"{NUMBERS[2]},<script>window.__pwned=1</script>,Sunrise Clinic,2026-11-24T10:00,UTC",
        f"{NUMBERS[3]},Dan,Sunrise Clinic,not a date,UTC",
    ]
    upload(signed_in, "Bad rows", csv_file(tmp_path, "bad.csv", rows))
    errors = signed_in.wait_text("#row-errors", "nothing was created")
    signed_in.shot("campaign-row-errors")
    cells = [
        [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        for row in signed_in.find_all("#row-errors tbody tr")
    ]
    assert [c[0] for c in cells] == ["3", "4", "5"], cells
    assert "3 problems in the file" in errors
    assert signed_in.driver.execute_script("return window.__pwned;") is None
    # The form keeps what was typed; no campaign exists.
    assert signed_in.find("#campaign-form input[name=name]").get_attribute("value") == "Bad rows"
    assert "No campaigns yet" in signed_in.text_of("#campaigns")


def test_a_csv_campaign_runs_live_pauses_resumes_and_exports(
    signed_in: Browser, console: ConsoleServer, tmp_path: Path
) -> None:
    for i, number in enumerate(NUMBERS):
        persona = Persona.person(Turn(press="1" if i % 2 == 0 else "2"))
        console.call(lambda n=number, p=persona: console.simulator.assign(n, p))
    rows = [f"{n},Person {i},Sunrise Clinic,2026-11-24T10:00,UTC" for i, n in enumerate(NUMBERS)]
    # A call every three seconds or so: the campaign is still running when it is paused.
    upload(signed_in, "November reminders", csv_file(tmp_path, "good.csv", rows), "0.3")
    signed_in.wait_text(".flash", "Campaign created")
    signed_in.wait_text("#campaign-name", "November reminders")
    signed_in.driver.execute_script("window.__notReloaded = true;")
    campaign_id = signed_in.path.split("/")[3].split("?")[0]

    # It moves without a reload: the counts change on the page as calls end.
    signed_in.wait_for(lambda _: progress_of(signed_in)[0] >= 1, "a first finished call")
    signed_in.shot("campaign-running")
    signed_in.submit("#campaign form[data-action=pause]")
    signed_in.wait_text(".flash", "Campaign paused")
    signed_in.wait_text("#campaign .state", "paused")
    assert signed_in.find("#campaign form[data-action=resume]").is_displayed()
    assert not signed_in.find("#campaign form[data-action=pause]").is_displayed()
    signed_in.shot("campaign-paused")
    # The calls recorded by the time the pause committed are all the campaign gets while
    # paused: those under way finish, and no other is placed.
    placed = console.run(campaign_calls(console, campaign_id))
    assert placed < 6
    signed_in.wait_for(
        lambda d: "in_progress" not in d.find_element(By.CSS_SELECTOR, "#campaign .statuses").text,
        "the calls under way to finish",
    )
    assert progress_of(signed_in)[0] < 6
    signed_in.open("/console/campaigns")
    signed_in.wait_text(f"tr[data-campaign='{campaign_id}'] .state", "paused")
    assert console.run(campaign_calls(console, campaign_id)) == placed
    signed_in.find(f"tr[data-campaign='{campaign_id}'] form[data-action=resume] button").click()
    signed_in.wait_text(".flash", "Campaign resumed")
    signed_in.driver.execute_script("window.__notReloaded = true;")
    row = f"tr[data-campaign='{campaign_id}']"
    signed_in.wait_text(f"{row} .finished", "6 / 6 finished (100%)", timeout=90)
    signed_in.wait_text(f"{row} .state", "done")
    assert signed_in.driver.execute_script("return window.__notReloaded === true;")
    outcomes = signed_in.text_of(f"{row} .outcomes")
    assert "confirmed: 3" in outcomes
    assert "cancelled: 3" in outcomes
    assert not signed_in.find(f"{row} form[data-action=pause]").is_displayed()
    signed_in.shot("campaigns-done")
    assert console.run(campaign_calls(console, campaign_id)) == 6
    assert signed_in.console_errors() == []

    # The export link gives every row's result (fetched with the browser's session cookie).
    href = signed_in.find(f"{row} a.export").get_attribute("href")
    session = {"ivr_console": signed_in.driver.get_cookie("ivr_console")["value"]}

    async def export() -> tuple[int, dict[str, Any], str]:
        async with aiohttp.ClientSession(cookies=session) as http, http.get(href) as response:
            return response.status, dict(response.headers), await response.text()

    status, headers, body = console.run(export())
    assert status == 200
    assert headers["Content-Disposition"].startswith("attachment;")
    lines = body.strip().splitlines()
    assert len(lines) == 7
    assert all(number in body for number in NUMBERS)

    # The campaign's notifications are one filter away.
    signed_in.open(f"/console/notifications?campaign={campaign_id}")
    signed_in.wait_for(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "#notifications tbody tr[data-notification]")) == 6
        ),
        "the campaign's six notifications",
    )


def test_the_same_upload_sent_twice_creates_one_campaign(
    signed_in: Browser, console: ConsoleServer
) -> None:
    """A double click (or a resent form) carries the form's key: the second finds the first."""
    signed_in.open("/console/campaigns")
    key = signed_in.find("#campaign-form input[name=upload_key]").get_attribute("value")
    csrf = signed_in.find("body").get_attribute("data-csrf")
    session = {"ivr_console": signed_in.driver.get_cookie("ivr_console")["value"]}
    rows = HEADER + f"{NUMBERS[0]},Ann,Sunrise Clinic,2026-11-24T10:00,UTC\n"

    async def send() -> tuple[int, str]:
        form = aiohttp.FormData()
        for name, value in (("csrf", csrf), ("upload_key", key), ("name", "Once"),
                            ("plan", "appointment_reminder")):  # fmt: skip
            form.add_field(name, value)
        form.add_field("file", rows.encode(), filename="once.csv", content_type="text/csv")
        async with (
            aiohttp.ClientSession(cookies=session) as http,
            http.post(console.url + "/console/campaigns", data=form, allow_redirects=False) as r,
        ):
            return r.status, r.headers.get("Location", "")

    first, second = console.run(send()), console.run(send())
    assert first[0] == second[0] == 303
    assert first[1].split("?")[0] == second[1].split("?")[0]
    assert console.run(console.app[OUTBOUND].campaigns.count()) == 1
