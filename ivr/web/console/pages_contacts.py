"""Console pages: contacts (time zone, opt-outs by category, do-not-call) and their changes.

The list is a keyset-paged search over every number with a contact row or an opt-out
(ivr/store/contact_queries.py). Changes go through the same rules as ``/api/v1/contacts`` and
``/api/v1/do-not-call`` (ivr/outbound/contact_preferences.py); each is a form POST (the
middleware checks its CSRF token) answered with a redirect to the contact's page.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web

from ivr.outbound.contact_preferences import (
    MAX_REASON_LENGTH,
    CategoryPreference,
    ContactPreferences,
    apply_preferences,
    check_preferences,
    clear_do_not_call,
    contact_view,
    set_do_not_call,
)
from ivr.outbound.requests import RequestError
from ivr.store.contact_queries import ContactSearch
from ivr.web.api_http import lenient_e164
from ivr.web.console.render import render
from ivr.web.keys import SERVICES

PAGE_SIZE = 50
MESSAGES = {
    "dnc-added": "Added to the do-not-call list: no call will be placed to this number.",
    "dnc-removed": "Taken off the do-not-call list.",
    "saved": "Saved.",
}


def _number(raw: str, field: str = "number") -> str:
    """An E.164 number, or 400 naming what is wrong with it."""
    try:
        return lenient_e164(raw, field)
    except RequestError as exc:
        raise web.HTTPBadRequest(text="; ".join(exc.problems.values())) from exc


def contact_url(number: str, done: str | None = None) -> str:
    return f"/console/contacts/{quote(number, safe='')}" + (f"?done={done}" if done else "")


async def index(request: web.Request) -> web.StreamResponse:
    q = request.query
    text = q.get("q", "").strip().replace(" ", "")
    category = q.get("category", "").strip() or None
    after = q.get("after") or None
    try:
        search = ContactSearch(prefix=text, do_not_call=q.get("dnc") == "1", category=category)
    except ValueError as exc:
        return render(
            request, "contacts.html", status=400, error=str(exc), rows=[], next_after=None,
            q=q, search=None, first=after is None, whole=None,
        )  # fmt: skip
    async with request.config_dict[SERVICES].store.read() as tx:
        rows = await tx.contact_lists.page(search, after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render(
        request, "contacts.html", error=None, rows=rows, q=q, search=search, first=after is None,
        next_after=rows[-1].number if more else None, whole=_whole_number(search.number_prefix),
    )  # fmt: skip


def _whole_number(text: str) -> str | None:
    """The search text if it is a complete number: its page opens even with no record."""
    try:
        return lenient_e164(text, "q") if len(text) > 7 else None
    except RequestError:
        return None


async def _contact_page(
    request: web.Request, number: str, *, status: int = 200, error: str | None = None
) -> web.Response:
    services = request.config_dict[SERVICES]
    async with services.store.read() as tx:
        contact = await contact_view(tx, number)
        recent = await tx.contact_lists.recent_notifications(number)
    return render(
        request, "contact.html", status=status, contact=contact, recent=recent, error=error,
        message=MESSAGES.get(request.query.get("done", "")), max_reason=MAX_REASON_LENGTH,
    )  # fmt: skip


async def show(request: web.Request) -> web.StreamResponse:
    return await _contact_page(request, _number(request.match_info["number"]))


def _reason(form: Mapping[str, object]) -> str | None:
    reason = str(form.get("reason", "")).strip()
    return reason[:MAX_REASON_LENGTH] or None


async def add_do_not_call(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    number = _number(str(form.get("number") or request.match_info.get("number", "")))
    async with request.config_dict[SERVICES].store.transaction() as tx:
        await set_do_not_call(tx, number, _reason(form))
    raise web.HTTPSeeOther(contact_url(number, "dnc-added"))


async def remove_do_not_call(request: web.Request) -> web.StreamResponse:
    number = _number(request.match_info["number"])
    async with request.config_dict[SERVICES].store.transaction() as tx:
        await clear_do_not_call(tx, number)
    raise web.HTTPSeeOther(contact_url(number, "dnc-removed"))


async def preferences(request: web.Request) -> web.StreamResponse:
    """Time zone, or one category opted out of / back in to; errors re-show the page (422)."""
    services = request.config_dict[SERVICES]
    number = _number(request.match_info["number"])
    form = await request.post()
    change = str(form.get("change", ""))
    try:
        if change == "timezone":
            zone = str(form.get("timezone", "")).strip() or None
            wish = ContactPreferences(timezone=zone)
        elif change in ("opt_out", "opt_in"):
            category = str(form.get("category", "")).strip()
            if not category:
                raise RequestError({"category": "name the category (or * for every optional one)"})
            preference = CategoryPreference(opt_out=change == "opt_out", reason=_reason(form))
            wish = ContactPreferences(categories={category: preference})
        else:
            raise web.HTTPBadRequest(text=f"unknown change {change[:40]!r}")
        check_preferences(wish, services.settings.policy())
    except RequestError as exc:
        message = "; ".join(f"{field}: {why}" for field, why in exc.problems.items())
        return await _contact_page(request, number, status=422, error=message)
    async with services.store.transaction() as tx:
        await apply_preferences(tx, number, wish)
    raise web.HTTPSeeOther(contact_url(number, "saved"))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/contacts", index),
        web.post("/contacts/do-not-call", add_do_not_call),
        web.get("/contacts/{number}", show),
        web.post("/contacts/{number}/do-not-call", add_do_not_call),
        web.post("/contacts/{number}/do-not-call/remove", remove_do_not_call),
        web.post("/contacts/{number}/preferences", preferences),
    ]
