"""Campaigns: the list with live progress, one campaign, CSV upload, pause/resume/cancel, export.

Progress (notifications by status, calls' outcomes) comes from CampaignService and follows
the database over server-sent events (``/console/events/campaigns``), so a campaign moving
in any worker process moves on every operator's screen. Changes are POSTed forms with the
session's CSRF token (checked by the auth middleware) and answer 303 back to the page.

A CSV upload carries an idempotency key made when the form was shown: pressing the button
twice, or reloading after a slow upload, creates the campaign once.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ivr.outbound.campaigns import (
    CampaignNotFound,
    CampaignService,
    CampaignStateError,
    CampaignView,
    IdempotencyConflict,
    RowError,
)
from ivr.outbound.requests import RequestError
from ivr.web import app as web_app
from ivr.web.console.live import event_stream
from ivr.web.console.render import render, when
from ivr.web.keys import SERVICES

PAGE_SIZE = 25
# Row errors shown for a refused upload (a file can have one per row); the count says the rest.
ERRORS_SHOWN = 200
# Status segments of a progress bar, in the order they are drawn.
SEGMENTS = ("done", "skipped", "failed", "cancelled", "in_progress")
ACTIONS = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}
# Which action buttons a campaign in each state offers.
OFFERED = {
    "active": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
    "cancelled": (),
    "done": (),
}


def _service(request: web.Request) -> CampaignService:
    return request.config_dict[web_app.OUTBOUND].campaigns


def progress_json(view: CampaignView) -> dict[str, Any]:
    """What the page and its live updates show of one campaign."""
    p = view.progress
    total = p.total or 0
    finished = sum(p.by_status.get(s, 0) for s in ("done", "skipped", "failed", "cancelled"))
    return {
        "id": view.id,
        "state": view.state,
        "total": total,
        "finished": finished,
        "percent": round(100 * finished / total) if total else 0,
        "segments": [
            {
                "status": status,
                "count": p.by_status.get(status, 0),
                "width": (100 * p.by_status.get(status, 0) / total) if total else 0,
            }
            for status in SEGMENTS
        ],
        "statuses": dict(sorted(p.by_status.items())),
        "outcomes": dict(sorted((k or "none", v) for k, v in p.by_outcome.items())),
        "actions": list(OFFERED.get(view.state, ())),
    }


def _page_offset(request: web.Request) -> int:
    try:
        page = int(request.query.get("page", "1"))
    except ValueError:
        raise web.HTTPBadRequest(text="page must be a number") from None
    return max(0, page - 1) * PAGE_SIZE


async def index(request: web.Request) -> web.Response:
    return await _list_page(request)


async def _list_page(
    request: web.Request,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: list[RowError] | None = None,
    error_count: int = 0,
    problem: str | None = None,
) -> web.Response:
    """The list, with the upload form as it was sent and what was wrong with it, if any."""
    service = _service(request)
    offset = _page_offset(request)
    views = await service.list(offset=offset, limit=PAGE_SIZE)
    total = await service.count()
    services = request.config_dict[SERVICES]
    return render(
        request,
        "campaigns.html",
        status=status,
        campaigns=[(v, progress_json(v)) for v in views],
        total=total,
        page=offset // PAGE_SIZE + 1,
        pages=max(1, -(-total // PAGE_SIZE)),
        plans=sorted(services.plans.plans),
        upload_key=secrets.token_urlsafe(16),
        flash=request.query.get("done"),
        form=values or {},
        errors=errors or [],
        error_count=error_count,
        problem=problem,
    )


async def detail(request: web.Request) -> web.StreamResponse:
    view = await _service(request).get(request.match_info["id"])
    if view is None:
        raise web.HTTPNotFound(text=f"no campaign {request.match_info['id']!r}")
    return render(
        request,
        "campaign.html",
        c=view,
        p=progress_json(view),
        flash=request.query.get("done"),
    )


async def _form(request: web.Request) -> tuple[dict[str, str], str | None]:
    """The upload form's fields and the CSV file's text.

    The auth middleware has read the form already (for its CSRF token); aiohttp keeps it,
    with the file spooled to a temporary file, up to the console's upload limit."""
    form = await request.post()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    uploads = [v for v in form.values() if isinstance(v, web.FileField)]
    try:
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return values, None
        raw = await asyncio.to_thread(upload.file.read)  # a temporary file: not on the loop
    finally:
        for field in uploads:
            field.file.close()
    if not raw.strip():
        return values, None
    try:
        return values, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError({"file": f"the file is not UTF-8 text (byte {exc.start})"}) from exc


def _number(values: dict[str, str], name: str) -> float | None:
    raw = values.get(name, "")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise RequestError({name: f"{raw!r} is not a number"}) from None


async def create(request: web.Request) -> web.StreamResponse:
    """Create a campaign from the uploaded CSV; 422 with every row error, nothing created."""
    values: dict[str, str] = {}
    try:
        values, text = await _form(request)
        if not values.get("name"):
            raise RequestError({"name": "give the campaign a name"})
        if text is None:
            raise RequestError(
                {"file": "choose a CSV file with a header row and one row per person"}
            )
        view, errors = await _service(request).create_from_csv(
            values["name"],
            values.get("plan", ""),
            text,
            calls_per_second=_number(values, "calls_per_second"),
            window=values.get("window") or None,
            idempotency_key=values.get("upload_key") or None,
        )
    except RequestError as exc:
        problem = "; ".join(f"{field}: {message}" for field, message in exc.problems.items())
        return await _list_page(request, status=422, values=values, problem=problem)
    except IdempotencyConflict as exc:
        raise web.HTTPSeeOther(f"/console/campaigns/{quote(exc.view.id)}") from exc
    if view is None:
        shown: list[RowError] = errors[:ERRORS_SHOWN]
        return await _list_page(
            request, status=422, values=values, errors=shown, error_count=len(errors)
        )
    raise web.HTTPSeeOther(f"/console/campaigns/{quote(view.id)}?done=created")


async def change(request: web.Request) -> web.StreamResponse:
    """Pause, resume or cancel; back to where the button was (the list or the campaign)."""
    campaign_id = request.match_info["id"]
    action = request.match_info["action"]
    service = _service(request)
    form = await request.post()
    back = str(form.get("back", ""))
    target = "/console/campaigns" if back == "list" else f"/console/campaigns/{quote(campaign_id)}"
    try:
        await getattr(service, action)(campaign_id)
    except CampaignNotFound as exc:
        raise web.HTTPNotFound(text=f"no campaign {campaign_id!r}") from exc
    except CampaignStateError as exc:
        raise web.HTTPConflict(text=str(exc)) from exc
    raise web.HTTPSeeOther(f"{target}?done={ACTIONS[action]}")


async def export(request: web.Request) -> web.StreamResponse:
    campaign_id = request.match_info["id"]
    service = _service(request)
    view = await service.get(campaign_id)
    if view is None:
        raise web.HTTPNotFound(text=f"no campaign {campaign_id!r}")
    stamp = when(view.created_at).replace(" ", "_").replace(":", "")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="campaign-{view.id}-{stamp}.csv"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    async for piece in service.export_csv(campaign_id):
        await response.write(piece.encode())
    await response.write_eof()
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """The campaigns of one list page (``?page=``), or one campaign (``?id=``), as they move."""
    service = _service(request)
    offset = _page_offset(request)
    one = request.query.get("id")

    async def snapshot() -> dict[str, Any]:
        if one:
            view = await service.get(one)
            views = [view] if view is not None else []
        else:
            views = await service.list(offset=offset, limit=PAGE_SIZE)
        return {"campaigns": [progress_json(v) for v in views]}

    return await event_stream(request, snapshot)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/campaigns", index),
        web.post("/campaigns", create),
        web.get("/campaigns/{id}", detail),
        web.post("/campaigns/{id}/{action:pause|resume|cancel}", change),
        web.get("/campaigns/{id}/export.csv", export),
        web.get("/events/campaigns", events),
    ]
