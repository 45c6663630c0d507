"""Console pages: campaigns."""

from __future__ import annotations

from aiohttp import web

from ivr.web.console.render import render


async def index(request: web.Request) -> web.StreamResponse:
    return render(request, "placeholder.html", title="Campaigns")


def routes() -> list[web.RouteDef]:
    return [web.get("/campaigns", index)]
