"""``GET /audio/...``: prompt audio for ``<Play>``, only behind a valid, unexpired signature."""

from __future__ import annotations

import time

from aiohttp import web

from ivr.web.keys import SERVICES
from ivr.web.signing import verify_signed_path


async def serve_audio(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    query = request.query
    path = request.path
    if not verify_signed_path(
        services.secret, path, query.get("exp", ""), query.get("sig", ""), time.time()
    ):
        raise web.HTTPForbidden(text="invalid or expired audio signature")
    audio_dir = services.settings.audio_dir.resolve()
    file = (audio_dir / request.match_info["name"]).resolve()
    if not file.is_relative_to(audio_dir) or not file.is_file():
        raise web.HTTPNotFound(text="no such audio")
    return web.FileResponse(file, headers={"Content-Type": "audio/wav"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audio/{name:.+}", serve_audio)
