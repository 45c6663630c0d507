"""Live updates for console pages: server-sent events from a periodic snapshot.

A page's stream polls the database (the only place every worker process writes to) once per
interval and sends the snapshot only when it changed, as JSON; the browser's EventSource
(static/live.js) hands it to the page's renderer, which writes text into the DOM (never
markup). A comment line every ~15 s keeps proxies from closing an idle stream. The stream
ends when the browser goes away, when the session expires (the reconnect then gets 401) and
when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from aiohttp import web

from ivr.web.console.auth import current_session
from ivr.web.console.render import SECURITY_HEADERS

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 2000

Snapshot = Callable[[], Awaitable[Any]]
STOPPING = web.AppKey("console_stopping", asyncio.Event)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def on_shutdown(app: web.Application) -> None:
    app[STOPPING].set()


def install(app: web.Application) -> None:
    """Give the console app the shutdown signal that ends open streams."""
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(on_shutdown)


async def event_stream(
    request: web.Request, snapshot: Snapshot, *, interval: float = 1.0, event: str = "update"
) -> web.StreamResponse:
    """Send ``snapshot()`` as ``event`` whenever it changes, until the stream ends."""
    session = current_session(request)
    stopping = request.app[STOPPING]
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass events on at once
        }
    )
    await response.prepare(request)
    last: str | None = None
    quiet_since = time.monotonic()
    with contextlib.suppress(ConnectionError):
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        while not stopping.is_set() and session.expires > time.time():
            data = json.dumps(await snapshot(), default=_plain, separators=(",", ":"))
            if data != last:
                await response.write(f"event: {event}\ndata: {data}\n\n".encode())
                last = data
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                await response.write(b": still here\n\n")
                quiet_since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # keeps a cancellation (wait_for may not)
                    await stopping.wait()
    return response
