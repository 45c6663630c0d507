"""The contacts pages over HTTP: paged search, filters, do-not-call and opt-out changes."""

from __future__ import annotations

import re

import pytest

from ivr.store import OptOutSource
from tests.console.pages.conftest import ConsoleClient, text_of

NUMBER = "+12025550123"


def numbers_listed(html: str) -> list[str]:
    return re.findall(r'<tr data-number="([^"]*)">', html)


@pytest.fixture
async def known(console_client: ConsoleClient) -> ConsoleClient:
    """120 numbers with a contact row, 5 more with only an opt-out."""
    async with console_client.store.transaction() as tx:
        for n in range(120):
            await tx.contacts.update(f"+1202555{n:04d}", timezone="America/New_York")
        for n in range(200, 205):
            await tx.opt_outs.opt_out(f"+1202555{n:04d}", "marketing", OptOutSource.SMS)
    return console_client


async def test_pages_walk_every_known_number_once(known: ConsoleClient) -> None:
    seen: list[str] = []
    path = "/console/contacts?q=%2B1202"
    while True:
        html = await known.page(path)
        seen += numbers_listed(html)
        found = re.search(r'id="next-page" href="([^"]*)"', html)
        if found is None:
            break
        path = found.group(1).replace("&amp;", "&")
    assert len(seen) == 125
    assert seen == sorted(seen)
    assert len(set(seen)) == 125
    assert seen[-1] == "+12025550204"


async def test_search_by_prefix_and_filters(known: ConsoleClient) -> None:
    assert numbers_listed(await known.page("/console/contacts?q=%2B120255501")) == [
        f"+120255501{n:02d}" for n in range(20)
    ]
    # Typed without the +, with spaces: the same search.
    assert len(numbers_listed(await known.page("/console/contacts?q=1202+5550+11"))) == 10
    html = await known.page("/console/contacts?category=marketing")
    assert numbers_listed(html) == [f"+1202555{n:04d}" for n in range(200, 205)]
    assert "marketing" in text_of(html)
    assert numbers_listed(await known.page("/console/contacts?dnc=1")) == []
    html = await known.page("/console/contacts?q=%2B12025559999")
    assert "Open the page of +12025559999" in text_of(html)
    html = await known.page("/console/contacts?q=12ab", status=400)
    assert "is not the start of a number" in html


async def test_adding_a_number_to_do_not_call_and_taking_it_off(
    console_client: ConsoleClient,
) -> None:
    await console_client.page("/console/contacts")
    response = await console_client.post(
        "/console/contacts/do-not-call", {"number": "+1 (202) 555-0123", "reason": "asked twice"}
    )
    assert response.status == 303
    assert response.headers["Location"] == "/console/contacts/%2B12025550123?done=dnc-added"
    html = await console_client.page(response.headers["Location"])
    assert "Added to the do-not-call list" in html
    assert text_of(html).count("yes: asked twice") == 1
    assert NUMBER in numbers_listed(await console_client.page("/console/contacts?dnc=1"))
    async with console_client.store.read() as tx:
        contact = await tx.contacts.get(NUMBER)
    assert contact is not None
    assert (contact.do_not_call, contact.do_not_call_reason) == (True, "asked twice")

    response = await console_client.post(f"/console/contacts/{NUMBER}/do-not-call/remove", {})
    assert response.status == 303
    html = await console_client.page(response.headers["Location"])
    assert "Taken off the do-not-call list." in html
    assert numbers_listed(await console_client.page("/console/contacts?dnc=1")) == []


async def test_opt_outs_and_the_time_zone(console_client: ConsoleClient) -> None:
    page = f"/console/contacts/{NUMBER}"
    await console_client.page(page)
    prefs = page + "/preferences"
    response = await console_client.post(
        prefs, {"change": "opt_out", "category": "marketing", "reason": "no ads"}
    )
    assert response.status == 303
    html = await console_client.page(page)
    assert 'data-category="marketing"' in html
    assert "no ads" in html
    response = await console_client.post(prefs, {"change": "opt_out", "category": "transactional"})
    assert response.status == 422
    assert "is transactional: it is always delivered" in text_of(await response.text())
    response = await console_client.post(prefs, {"change": "opt_in", "category": "marketing"})
    assert response.status == 303
    assert 'data-category="marketing"' not in await console_client.page(page)

    response = await console_client.post(prefs, {"change": "timezone", "timezone": "Mars/Base"})
    assert response.status == 422
    assert "Mars/Base" in text_of(await response.text())
    await console_client.post(prefs, {"change": "timezone", "timezone": "Europe/Paris"})
    assert "Europe/Paris" in text_of(await console_client.page(page))


async def test_bad_numbers_and_missing_csrf_are_refused(console_client: ConsoleClient) -> None:
    await console_client.page("/console/contacts")
    response = await console_client.post("/console/contacts/do-not-call", {"number": "12"})
    assert response.status == 400
    assert "is not an E.164 number" in await response.text()
    await console_client.page("/console/contacts/not-a-number", status=400)
    response = await console_client.post(
        "/console/contacts/do-not-call", {"number": NUMBER}, csrf=False
    )
    assert response.status == 403
    async with console_client.store.read() as tx:
        assert await tx.contacts.get(NUMBER) is None


async def test_a_reason_typed_with_markup_is_shown_as_text(console_client: ConsoleClient) -> None:
    evil = "<script>alert(1)</script>"
    await console_client.page("/console/contacts")
    await console_client.post("/console/contacts/do-not-call", {"number": NUMBER, "reason": evil})
    for path in (f"/console/contacts/{NUMBER}", "/console/contacts?dnc=1"):
        html = await console_client.page(path)
        assert evil not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
