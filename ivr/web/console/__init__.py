"""The operator console, ``/console``: server-rendered pages for the people running calls.

``setup_console(app)`` mounts a sub-application at ``/console`` whose middlewares add the
security headers (render.py) and require a signed-in session with a CSRF token on every
change (auth.py). Each ``pages_*`` module exposes ``routes()``: route definitions relative
to ``/console`` (``web.get("/campaigns", ...)`` answers ``/console/campaigns``). Handlers
reach the server's parts with ``request.config_dict[...]`` (``SERVICES``, ``OUTBOUND``, ...),
since ``request.app`` is the console sub-application.

Conventions the middleware relies on: live updates are served under ``/console/events/``
and HTML fragments under ``/console/fragments/`` (401 when not signed in, not a redirect).
Static assets live in ``static/`` and are the only thing readable without signing in.
"""

from __future__ import annotations

from aiohttp import web

from ivr.web.console import auth, live
from ivr.web.console.render import STATIC_DIR, security_headers

# A CSV campaign upload may be far larger than an API request (the app-wide limit).
UPLOAD_MAX_BYTES = 16 * 1024 * 1024


@web.middleware
async def larger_uploads(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """Multipart forms (CSV uploads) may be up to UPLOAD_MAX_BYTES; the rest keep the app's."""
    if request.method == "POST" and request.content_type == "multipart/form-data":
        request = request.clone(client_max_size=UPLOAD_MAX_BYTES)
    return await handler(request)


async def home(request: web.Request) -> web.StreamResponse:  # noqa: ARG001
    raise web.HTTPSeeOther("/console/campaigns")


async def bare_prefix(request: web.Request) -> web.StreamResponse:  # noqa: ARG001
    raise web.HTTPPermanentRedirect("/console/")


def setup_console(app: web.Application) -> None:
    # The pages reach the app's parts through ivr.web.app, which imports this package: they
    # are imported here, once ivr.web.app is loaded, so either may be imported first.
    from ivr.web.console import (
        pages_calls,
        pages_campaigns,
        pages_contacts,
        pages_notifications,
        pages_plans,
        pages_reports,
    )

    console = web.Application(
        middlewares=[security_headers, larger_uploads, auth.require_sign_in],
    )
    console[auth.THROTTLE] = auth.Throttle()
    live.install(console)
    console.add_routes(auth.routes())
    console.add_routes([web.get("/", home)])
    for module in (
        pages_campaigns,
        pages_calls,
        pages_notifications,
        pages_reports,
        pages_plans,
        pages_contacts,
    ):
        console.add_routes(module.routes())
    console.router.add_static("/static", STATIC_DIR, append_version=False)
    app.add_subapp("/console", console)
    app.router.add_get("/console", bare_prefix)
