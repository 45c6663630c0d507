"""``GET /audio/...``: prompt audio for ``<Play>``, only behind a valid, unexpired signature.

Synthesized prompts (under ``cache/``) are named by the hash of what they say
(ivr/speech/prompts.py): such a file never changes, so its bytes are served from memory
once read. Every caller of a burst fetches the same greeting at the same moment; from disk
each fetch cost two path resolutions and three trips to a thread (stat, open, close).
Recorded prompts elsewhere under the audio directory can be replaced: they are always
served from disk.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from aiohttp import web

from ivr.web.keys import SERVICES
from ivr.web.signing import verify_signed_path

# Prompt bytes kept in memory per server (8 kHz mu-law: about 70 minutes of speech).
HELD_BYTES = 32 * 2**20
CACHE_DIR = "cache"


class HeldPrompts:
    """The bytes of the prompt files served lately, least recently used dropped first."""

    def __init__(self, limit: int = HELD_BYTES) -> None:
        self.limit = limit
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, name: str) -> bytes | None:
        data = self._files.get(name)
        if data is not None:
            self._files.move_to_end(name)
        return data

    def keep(self, name: str, data: bytes) -> None:
        if name in self._files or len(data) > self.limit // 8:
            return
        self._files[name] = data
        self._size += len(data)
        while self._size > self.limit:
            _, dropped = self._files.popitem(last=False)
            self._size -= len(dropped)


HELD = web.AppKey("held_prompts", HeldPrompts)


async def serve_audio(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    query = request.query
    path = request.path
    if not verify_signed_path(
        services.secret, path, query.get("exp", ""), query.get("sig", ""), time.time()
    ):
        raise web.HTTPForbidden(text="invalid or expired audio signature")
    held = request.app[HELD]
    name = request.match_info["name"]
    data = held.get(name)
    if data is None:
        audio_dir = services.settings.audio_dir.resolve()
        file = (audio_dir / name).resolve()
        if not file.is_relative_to(audio_dir) or not file.is_file():
            raise web.HTTPNotFound(text="no such audio")
        if not file.is_relative_to(audio_dir / CACHE_DIR):
            return web.FileResponse(file, headers={"Content-Type": "audio/wav"})
        data = await asyncio.to_thread(file.read_bytes)
        held.keep(file.relative_to(audio_dir).as_posix(), data)
    return web.Response(body=data, content_type="audio/wav")


def add_routes(app: web.Application) -> None:
    app[HELD] = HeldPrompts()
    app.router.add_get("/audio/{name:.+}", serve_audio)
