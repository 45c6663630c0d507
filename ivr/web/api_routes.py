"""The integrators' JSON API, ``/api/v1``: notifications here, contacts in api_contacts.py.

Handlers parse the request, hand it to the NotificationService and answer its JSON; the
service and the store own every rule. The OpenAPI document (openapi.py) describes exactly
the routes ``add_routes`` registers; a test holds the two together.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ivr.outbound.requests import NotificationRequest, request_error
from ivr.outbound.service import NotificationService

# app.py imports this module to register the routes; the module (not its names) is imported
# back so that either may be imported first.
from ivr.web import api_campaigns, api_contacts, openapi
from ivr.web import app as web_app
from ivr.web.api_http import (
    API_PREFIX,
    OPENAPI_PATH,
    NotificationQuery,
    error_response,
    lenient_e164,
    parse_body,
    require_api_token,
)


def _notifications(request: web.Request) -> NotificationService:
    return request.app[web_app.OUTBOUND].notifications


def _location(notification: dict[str, Any]) -> str:
    return f"{API_PREFIX}/notifications/{notification['id']}"


async def create_notification(request: web.Request) -> web.Response:
    """201 with a new notification; 200 with the existing one for a known idempotency key."""
    body = await parse_body(request, NotificationRequest)
    notification, created = await _notifications(request).create(body)
    return web.json_response(
        notification, status=201 if created else 200, headers={"Location": _location(notification)}
    )


async def get_notification(request: web.Request) -> web.Response:
    notification_id = request.match_info["id"]
    notification = await _notifications(request).get(notification_id)
    if notification is None:
        return error_response(404, f"no notification {notification_id!r}")
    return web.json_response(notification)


async def list_notifications(request: web.Request) -> web.Response:
    """Oldest first; ``next`` is the id to pass as ``after`` for the next page, or null."""
    try:
        query = NotificationQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise request_error(exc) from exc
    to_number = lenient_e164(query.to, "to") if query.to is not None else None
    # One more than asked tells whether another page exists without a count query.
    items = await _notifications(request).page(
        status=query.status.value if query.status else None,
        plan_id=query.plan,
        to_number=to_number,
        after=query.after,
        limit=query.limit + 1,
    )
    more = len(items) > query.limit
    items = items[: query.limit]
    return web.json_response({"items": items, "next": items[-1]["id"] if more else None})


async def cancel_notification(request: web.Request) -> web.Response:
    """200 cancelled; 409 once a call was placed (or it ended); 404 unknown."""
    notification_id = request.match_info["id"]
    cancelled, notification = await _notifications(request).cancel(notification_id)
    if notification is None:
        return error_response(404, f"no notification {notification_id!r}")
    if not cancelled:
        return error_response(
            409,
            f"notification {notification_id} is {notification['status']} after "
            f"{notification['attempts']} call(s): only one not yet started can be cancelled",
            notification=notification,
        )
    return web.json_response(notification)


async def openapi_document(request: web.Request) -> web.Response:  # noqa: ARG001 - aiohttp handler
    return web.json_response(openapi.document())


def add_routes(app: web.Application) -> None:
    app.middlewares.append(require_api_token)
    router = app.router
    router.add_get(OPENAPI_PATH, openapi_document)
    router.add_post(f"{API_PREFIX}/notifications", create_notification)
    router.add_get(f"{API_PREFIX}/notifications", list_notifications)
    router.add_get(f"{API_PREFIX}/notifications/{{id}}", get_notification)
    router.add_delete(f"{API_PREFIX}/notifications/{{id}}", cancel_notification)
    api_contacts.add_routes(app)
    api_campaigns.add_routes(app)
