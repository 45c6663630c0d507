"""Server-rendered console pages: Jinja2 with autoescape on, and strict security headers.

Everything shown comes from people outside (names in variables, what callers said, CSV
fields), so every template value is escaped; nothing in a template may use ``|safe`` on such
data. The Content-Security-Policy allows scripts, styles, media and connections from this
server only and no inline script at all: even markup that slipped through could not run.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from ivr.web.console.auth import SESSION_KEY, csrf_token

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC_DIR = HERE / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@cache
def static_version(name: str) -> str:
    """A content hash for ``/console/static/NAME?v=...``: browsers may cache assets forever
    and still get a new file after an upgrade."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/console/static/{name}?v={static_version(name)}"


def when(value: datetime | None, empty: str = "–") -> str:
    """A stored (UTC) time as the console shows it everywhere: ``2026-12-03 12:50:14``."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def since(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, coarsely: ``42 s``, ``3 min``, ``2 h``."""
    if value is None:
        return "–"
    seconds = max(0, int(((now or datetime.now(UTC)) - value).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def query(args: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from ``args`` with ``changes`` applied (None removes a key)."""
    merged = {**args, **changes}
    clean = {k: v for k, v in merged.items() if v not in (None, "")}
    return "?" + urlencode(clean) if clean else ""


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=static_url, query=query)
    env.filters.update(when=when, since=since)
    return env


def render_text(request: web.Request, template: str, **context: Any) -> str:
    session = request.get(SESSION_KEY)
    return (
        environment()
        .get_template(template)
        .render(
            request=request,
            session=session,
            csrf=csrf_token(request),
            path=request.path,
            **context,
        )
    )


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """``template`` rendered as an HTML page (the security headers come from the middleware)."""
    return web.Response(
        text=render_text(request, template, **context),
        status=status,
        content_type="text/html",
        charset="utf-8",
    )


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """CSP and friends on every console response, errors and redirects included."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        exc.headers.setdefault("Cache-Control", "no-store")
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith("/console/static/"):
            # Pages hold callers' data: no copies in shared caches or the back-forward cache.
            response.headers.setdefault("Cache-Control", "no-store")
    return response
