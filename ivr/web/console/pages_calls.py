"""Live calls: every call under way now (who, plan, state, since), updated as it changes.

The page renders the table once on the server and then follows ``/console/events/calls``:
a snapshot of the same rows whenever one changes (see live.py). Calls are read from the
database, so the page shows the calls of every worker process, not only this one's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ivr.store.console_queries import LiveCall, live_calls
from ivr.web.console.live import event_stream
from ivr.web.console.render import render, since, when
from ivr.web.keys import SERVICES

SHOWN = 100  # the page lists the newest calls; a count says how many there are in all


async def _snapshot(request: web.Request) -> tuple[list[LiveCall], int, datetime]:
    now = datetime.now(UTC)
    async with request.config_dict[SERVICES].store.read() as tx:
        calls, total = await live_calls(tx, now, SHOWN)
    return calls, total, now


def _json(call: LiveCall, now: datetime) -> dict[str, Any]:
    return {
        "id": call.id,
        "number": call.number,
        "name": call.name,
        "direction": call.direction,
        "plan": call.plan_id,
        "status": call.status,
        "state": call.state,
        "answered_by": call.answered_by,
        "since": when(call.since),
        "for": since(call.since, now),
        "notification": call.notification_id,
    }


async def index(request: web.Request) -> web.StreamResponse:
    calls, total, now = await _snapshot(request)
    return render(request, "calls.html", calls=calls, total=total, now=now, shown=SHOWN)


async def events(request: web.Request) -> web.StreamResponse:
    async def snapshot() -> dict[str, Any]:
        calls, total, now = await _snapshot(request)
        return {"total": total, "calls": [_json(call, now) for call in calls]}

    return await event_stream(request, snapshot)


def routes() -> list[web.RouteDef]:
    return [web.get("/calls", index), web.get("/events/calls", events)]
