"""``/api/v1/campaigns``: create (JSON rows or a CSV upload), list, show, pause, resume,
cancel, and the results as CSV. The CampaignService owns every rule; handlers translate.

Status codes: 201 created (200: the idempotency key's earlier campaign, same request), 400 an
empty or malformed body, 404 unknown campaign, 409 the idempotency key was used for another
request or the state forbids the change (resume a cancelled campaign), 413 a body over
``MAX_CAMPAIGN_BYTES``, 415 neither JSON nor CSV, 422 fields or rows that cannot be accepted:
``{"errors": [{"row": 3, "field": "to", "message": ...}]}`` (``row`` absent for a
campaign-wide field).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.outbound.campaigns import (
    CampaignNotFound,
    CampaignRequest,
    CampaignService,
    CampaignStateError,
    CampaignView,
    Creation,
    IdempotencyConflict,
)
from ivr.outbound.requests import MAX_IDEMPOTENCY_KEY, request_error
from ivr.web import app as web_app
from ivr.web.api_http import (
    API_PREFIX,
    MAX_PAGE_SIZE,
    error_response,
    json_document,
    json_object,
)

CAMPAIGNS_PATH = f"{API_PREFIX}/campaigns"
# A campaign of 100,000 rows is a few MiB of CSV; other API bodies keep the app's 256 KiB.
MAX_CAMPAIGN_BYTES = 32 * 1024 * 1024
# Row errors in one answer: enough to fix a file, not a 100,000-item document.
MAX_ERRORS_SHOWN = 1000
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")


class CampaignQuery(BaseModel):
    """The query of a CSV upload (the JSON body carries the same fields)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    plan: str
    calls_per_second: float | None = Field(default=None, gt=0)
    window: str | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)


class CampaignPageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)


def _campaigns(request: web.Request) -> CampaignService:
    return request.app[web_app.OUTBOUND].campaigns


def _location(view: CampaignView) -> str:
    return f"{CAMPAIGNS_PATH}/{view.id}"


async def _body(request: web.Request) -> bytes:
    """The body, up to MAX_CAMPAIGN_BYTES (read here: the app's limit is for small bodies)."""
    if request.content_length is not None and request.content_length > MAX_CAMPAIGN_BYTES:
        raise _too_large()
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_CAMPAIGN_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> web.HTTPRequestEntityTooLarge:
    return web.HTTPRequestEntityTooLarge(
        MAX_CAMPAIGN_BYTES,
        0,
        text=json.dumps({"error": f"the body is over {MAX_CAMPAIGN_BYTES // 2**20} MiB"}),
        content_type="application/json",
    )


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _validated(model: type[CampaignQuery] | type[CampaignRequest], document: Any) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise request_error(exc) from exc


async def create_campaign(request: web.Request) -> web.Response:
    raw = await _body(request)
    if not raw.strip():
        raise _bad_request("the body is empty: send JSON {name, plan, rows} or a CSV file")
    service = _campaigns(request)
    try:
        if request.content_type == "application/json":
            # The API's own reading: a deep, NaN or 5000-digit document was a 500 here.
            document = json_object(json_document(raw))
            body: CampaignRequest = _validated(CampaignRequest, document)
            done = await service.submit(
                body.name, body.plan, body.rows, calls_per_second=body.calls_per_second,
                window=body.window, idempotency_key=body.idempotency_key,
            )  # fmt: skip
        elif request.content_type in _CSV_TYPES:
            query: CampaignQuery = _validated(CampaignQuery, dict(request.query))
            done = await service.submit_csv(
                query.name, query.plan, raw, calls_per_second=query.calls_per_second,
                window=query.window, idempotency_key=query.idempotency_key,
            )  # fmt: skip
        else:
            return error_response(
                415, f"the body is {request.content_type}: send application/json or text/csv"
            )
    except IdempotencyConflict as exc:
        return error_response(409, str(exc), campaign=exc.view.to_json())
    return _created(done)


def _created(done: Creation) -> web.Response:
    if done.view is None:
        shown = done.errors[:MAX_ERRORS_SHOWN]
        errors = [{"row": e.row, "field": e.field, "message": e.message} for e in shown]
        body: dict[str, Any] = {"errors": errors}
        if len(done.errors) > len(shown):
            body["more_errors"] = len(done.errors) - len(shown)
        return web.json_response(body, status=422)
    return web.json_response(
        done.view.to_json(),
        status=201 if done.created else 200,
        headers={"Location": _location(done.view)},
    )


async def list_campaigns(request: web.Request) -> web.Response:
    """Newest first; ``next_offset`` is the next page's ``offset``, or null on the last."""
    query: CampaignPageQuery = _validated(CampaignPageQuery, dict(request.query))  # type: ignore[arg-type]
    service = _campaigns(request)
    items = await service.list(offset=query.offset, limit=query.limit + 1)
    more = len(items) > query.limit
    items = items[: query.limit]
    return web.json_response(
        {
            "items": [view.to_json() for view in items],
            "total": await service.count(),
            "next_offset": query.offset + query.limit if more else None,
        }
    )


async def get_campaign(request: web.Request) -> web.Response:
    campaign_id = request.match_info["id"]
    view = await _campaigns(request).get(campaign_id)
    if view is None:
        return error_response(404, f"no campaign {campaign_id!r}")
    return web.json_response(view.to_json())


async def pause_campaign(request: web.Request) -> web.Response:
    return await _change(request, "pause")


async def resume_campaign(request: web.Request) -> web.Response:
    return await _change(request, "resume")


async def cancel_campaign(request: web.Request) -> web.Response:
    return await _change(request, "cancel")


async def _change(request: web.Request, verb: str) -> web.Response:
    """pause, resume or cancel: 200 with the campaign, 404 unknown, 409 not allowed now."""
    campaign_id = request.match_info["id"]
    service = _campaigns(request)
    action = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}[verb]
    try:
        view = await action(campaign_id)
    except CampaignNotFound as exc:
        return error_response(404, str(exc))
    except CampaignStateError as exc:
        return error_response(409, str(exc), campaign=exc.view.to_json())
    # A resumed campaign's due notifications go now, not at the scheduler's next round.
    request.app[web_app.OUTBOUND].scheduler.wake.set()
    return web.json_response(view.to_json())


async def export_campaign(request: web.Request) -> web.StreamResponse:
    """The results as CSV (streamed page by page; cells safe to open in a spreadsheet)."""
    campaign_id = request.match_info["id"]
    service = _campaigns(request)
    if await service.get(campaign_id) is None:
        return error_response(404, f"no campaign {campaign_id!r}")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"',
        }
    )
    await response.prepare(request)
    async for piece in service.export_csv(campaign_id):
        await response.write(piece.encode("utf-8"))
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    """Called by api_routes.add_routes, behind its bearer-token middleware."""
    router = app.router
    router.add_post(CAMPAIGNS_PATH, create_campaign)
    router.add_get(CAMPAIGNS_PATH, list_campaigns)
    router.add_get(f"{CAMPAIGNS_PATH}/{{id}}", get_campaign)
    router.add_post(f"{CAMPAIGNS_PATH}/{{id}}/pause", pause_campaign)
    router.add_post(f"{CAMPAIGNS_PATH}/{{id}}/resume", resume_campaign)
    router.add_post(f"{CAMPAIGNS_PATH}/{{id}}/cancel", cancel_campaign)
    router.add_get(f"{CAMPAIGNS_PATH}/{{id}}/export.csv", export_campaign)
