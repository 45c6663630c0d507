"""The reports page and its JSON over HTTP, on the known data set of tests/store/report_data.py."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from ivr.store.models import NOTIFICATIONS
from tests.console.pages.conftest import ConsoleClient, text_of
from tests.store.report_data import (
    PLAN_A,
    PLAN_B,
    SPRING,
    SPRING_NAME,
    insert_report_data,
    notification_row,
)

PERIOD = "since=2026-11-01&until=2026-11-03"


@pytest.fixture
async def reported(console_client: ConsoleClient) -> ConsoleClient:
    async with console_client.store.transaction() as tx:
        await insert_report_data(tx)
    return console_client


async def test_the_json_report_has_the_known_numbers(reported: ConsoleClient) -> None:
    response = await reported.http.get(f"/console/reports.json?{PERIOD}")
    assert response.status == 200
    doc = await response.json()
    assert (doc["since"], doc["until"]) == ("2026-11-01", "2026-11-03")
    total = doc["total"]
    assert (total["finished"], total["reached"], total["confirmed"]) == (8, 5, 3)
    assert total["confirmation_rate"] == 0.6
    assert total["attempts_per_notification"] == 1.5
    assert doc["calls"] == {
        "ended": 7, "answered": 4, "answered_by_person": 3, "answer_rate": round(4 / 7, 4),
    }  # fmt: skip
    assert doc["sms"] == {"sent": 5, "delivered": 2, "failed": 2}
    assert doc["by_day"]["2026-11-01"]["outcomes"] == {
        "confirmed": 2,
        "unreached": 1,
        "cancelled": 1,
    }
    assert doc["by_day"]["2026-11-03"]["finished"] == 0
    assert doc["by_plan"][PLAN_B]["calls"]["ended"] == 2
    campaigns = {c["id"]: c for c in doc["by_campaign"]}
    assert campaigns[SPRING]["name"] == SPRING_NAME
    assert campaigns[SPRING]["outcomes"] == {"confirmed": 2, "cancelled": 1}
    assert campaigns[None]["finished"] == 4

    narrowed = await (
        await reported.http.get(f"/console/reports.json?{PERIOD}&plan={PLAN_B}")
    ).json()
    assert narrowed["total"]["finished"] == 3
    assert list(narrowed["by_plan"]) == [PLAN_B]


async def test_the_page_shows_the_rates_tables_and_the_chart_data(reported: ConsoleClient) -> None:
    html = await reported.page(f"/console/reports?{PERIOD}")
    text = text_of(html)
    assert "8 notifications finished" in text
    assert "57.1 % answer rate" in text  # 4 of 7 calls
    assert "4 of 7 calls answered, 3 by a person" in text
    assert "60.0 % confirmation rate" in text
    assert "1.50 calls per notification" in text
    assert "5 SMS fallbacks 2 delivered, 2 failed" in text
    row_a = re.search(rf'<tr data-plan="{PLAN_A}">(.*?)</tr>', html, re.S)
    assert row_a is not None
    assert text_of(row_a.group(1)).startswith(f"{PLAN_A} 5 3 2 66.7 % 1.75 5 60.0 %")
    chart = re.search(r"data-chart='([^']*)'", html)
    assert chart is not None
    data = json.loads(unescape(chart.group(1)))
    assert data["labels"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    confirmed = next(d for d in data["datasets"] if d["label"] == "confirmed")
    assert confirmed["data"] == [2, 1, 0]
    # The chart is drawn by the vendored Chart.js, served by the product itself.
    assert "/console/static/vendor/chartjs/chart.umd.min.js" in html
    script = await reported.http.get("/console/static/vendor/chartjs/chart.umd.min.js")
    assert script.status == 200
    assert "Chart.js v4" in (await script.text())[:200]


async def test_campaigns_are_listed_by_name_as_text_and_narrow_the_report(
    reported: ConsoleClient,
) -> None:
    html = await reported.page(f"/console/reports?{PERIOD}")
    assert SPRING_NAME not in html
    row = re.search(rf'<tr data-campaign="{SPRING}">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Spring" in row.group(1)
    assert text_of(row.group(1)).startswith(f"{SPRING_NAME} 3 3 2 66.7 %")
    order = re.findall(r'<tr data-campaign="([^"]*)">', html)
    assert order == [SPRING, "camp-autumn", ""]  # most finished first, "no campaign" last
    html = await reported.page(f"/console/reports?{PERIOD}&campaign={SPRING}")
    assert SPRING_NAME not in html
    text = text_of(html)
    assert f"Campaign {SPRING_NAME} only" in text
    assert "3 notifications finished" in text
    assert "3 of 6 calls answered" in text


async def test_presets_and_the_default_period(console_client: ConsoleClient) -> None:
    html = await console_client.page("/console/reports?days=30")
    assert re.search(r'class="active">30 days<', html)
    html = await console_client.page("/console/reports")
    assert re.search(r'class="active">7 days<', html)
    assert "Nothing finished in this period." in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-11-05&until=2026-11-01", "ends (2026-11-01) before it starts"),
        ("since=2025-01-01&until=2026-11-01", "at most 366 days"),
        ("since=yesterday", "since: 'yesterday' is not a date like 2026-12-03"),
        ("days=0", "days: a whole number from 1 to 366"),
    ],
)
async def test_a_bad_period_is_refused_with_the_reason(
    console_client: ConsoleClient, query: str, message: str
) -> None:
    html = await console_client.page(f"/console/reports?{query}", status=400)
    assert message in unescape(html)
    response = await console_client.http.get(f"/console/reports.json?{query}")
    assert response.status == 400
    assert message in await response.text()


async def test_outcomes_from_callers_data_are_shown_as_text(console_client: ConsoleClient) -> None:
    evil = "<script>alert(1)</script>"
    async with console_client.store.transaction() as tx:
        row = notification_row("n-evil", PLAN_A, None, evil, 1)
        row["finished_at"] = row["created_at"]
        await tx.session.execute(NOTIFICATIONS.insert(), [row])
    html = await console_client.page("/console/reports?since=2026-11-01&until=2026-11-01")
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the tables
    chart = re.search(r"data-chart='([^']*)'", html)
    assert chart is not None
    assert "<" not in chart.group(1)  # tojson escapes it inside the attribute
    assert json.loads(unescape(chart.group(1)))["datasets"][0]["label"] == evil


async def test_nothing_is_readable_without_signing_in(reported: ConsoleClient) -> None:
    reported.http.session.cookie_jar.clear()
    response = await reported.http.get(f"/console/reports?{PERIOD}", allow_redirects=False)
    assert response.status == 303
    response = await reported.http.get(
        f"/console/reports.json?{PERIOD}", headers={"Accept": "application/json"}
    )
    assert response.status == 401
