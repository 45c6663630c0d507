"""``/api/v1/contacts`` and ``/api/v1/do-not-call``: what a person asked for, over the API.

The number in the path is E.164, ``+`` written as is or as ``%2B`` (see api_http.path_number).
The rules live in ivr/outbound/contact_preferences.py, shared with ``ivr dnc``.
"""

from __future__ import annotations

from aiohttp import web

from ivr.outbound.contact_preferences import (
    ContactPreferences,
    DoNotCallRequest,
    apply_preferences,
    check_preferences,
    clear_do_not_call,
    contact_view,
    do_not_call_list,
    set_do_not_call,
)
from ivr.web.api_http import API_PREFIX, parse_body, path_number
from ivr.web.keys import SERVICES


async def get_contact(request: web.Request) -> web.Response:
    """A number never seen is a contact with the defaults (200, not 404)."""
    number = path_number(request)
    async with request.app[SERVICES].store.read() as tx:
        return web.json_response(await contact_view(tx, number))


async def put_preferences(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = path_number(request)
    preferences = await parse_body(request, ContactPreferences)
    check_preferences(preferences, services.settings.policy())
    async with services.store.transaction() as tx:
        await apply_preferences(tx, number, preferences)
        return web.json_response(await contact_view(tx, number))


async def list_do_not_call(request: web.Request) -> web.Response:
    async with request.app[SERVICES].store.read() as tx:
        return web.json_response({"items": await do_not_call_list(tx)})


async def add_do_not_call(request: web.Request) -> web.Response:
    number = path_number(request)
    body = await parse_body(request, DoNotCallRequest, optional=True)
    async with request.app[SERVICES].store.transaction() as tx:
        await set_do_not_call(tx, number, body.reason)
        return web.json_response(await contact_view(tx, number))


async def remove_do_not_call(request: web.Request) -> web.Response:
    """200 whether or not the number was listed, so a retried DELETE is harmless."""
    number = path_number(request)
    async with request.app[SERVICES].store.transaction() as tx:
        await clear_do_not_call(tx, number)
        return web.json_response(await contact_view(tx, number))


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(f"{API_PREFIX}/contacts/{{number}}", get_contact)
    router.add_put(f"{API_PREFIX}/contacts/{{number}}/preferences", put_preferences)
    router.add_get(f"{API_PREFIX}/do-not-call", list_do_not_call)
    router.add_put(f"{API_PREFIX}/do-not-call/{{number}}", add_do_not_call)
    router.add_delete(f"{API_PREFIX}/do-not-call/{{number}}", remove_do_not_call)
