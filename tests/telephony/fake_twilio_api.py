"""A local stand-in for Twilio's REST API (2010-04-01), enough for the REST client's tests.

It checks Basic auth, creates calls and messages from form posts, serves and deletes
recordings, and answers in Twilio's JSON shapes, errors included. Tests queue special
answers per route (``plan``): an HTTP error, a stall (the request is received, then nothing
comes back until the test ends), or an error after the resource was already created.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from multidict import MultiDict

ACCOUNT = "AC" + "5a" * 16
TOKEN = "the-auth-token"
PREFIX = f"/2010-04-01/Accounts/{ACCOUNT}"
_E164 = re.compile(r"^\+[1-9][0-9]{4,14}$")

Route = Literal["calls", "call", "messages", "recording", "delete"]


@dataclass(frozen=True)
class Planned:
    """A special answer: ``status`` with Twilio's error body (or ``body`` as is), optionally
    after creating the resource (``created``); ``stall`` never answers."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    created: bool = False
    stall: bool = False


@dataclass
class Seen:
    method: str
    path: str
    form: MultiDict[str]
    authorization: str | None
    content_type: str


class FakeTwilioApi:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.recordings: dict[str, bytes] = {}
        self.plans: dict[Route, deque[Planned]] = {}
        self.release = asyncio.Event()
        self.base_url = ""
        self._sids = itertools.count(1)

    def plan(self, route: Route, *answers: Planned) -> None:
        self.plans.setdefault(route, deque()).extend(answers)

    def requests(self, method: str, path_end: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.endswith(path_end)]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"{PREFIX}/Calls.json", self._create_call)
        app.router.add_get(PREFIX + "/Calls/{sid}.json", self._get_call)
        app.router.add_post(f"{PREFIX}/Messages.json", self._create_message)
        app.router.add_get(PREFIX + "/Recordings/{sid}.wav", self._get_recording)
        app.router.add_delete(PREFIX + "/Recordings/{sid}.json", self._delete_recording)
        return app

    def sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._sids):032x}"

    async def _receive(self, request: web.Request) -> web.Response | None:
        form = await request.post()
        self.seen.append(
            Seen(
                request.method,
                request.path,
                MultiDict((k, v) for k, v in form.items() if isinstance(v, str)),
                request.headers.get("Authorization"),
                request.content_type,
            )
        )
        expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(401, 20003, "Authenticate")
        return None

    async def _planned(self, route: Route, created: bool) -> web.Response | None:
        queue = self.plans.get(route)
        if not queue or queue[0].created != created:
            return None
        answer = queue.popleft()
        if answer.stall:
            await self.release.wait()
            return web.Response(status=500)
        if answer.body is not None:
            return web.Response(status=answer.status, text=answer.body, headers=answer.headers)
        response = _error(answer.status, 20500, "Internal Server Error")
        response.headers.update(answer.headers)
        return response

    async def _create_call(self, request: web.Request) -> web.Response:
        if (refused := await self._receive(request)) or (
            refused := await self._planned("calls", created=False)
        ):
            return refused
        form = self.seen[-1].form
        for name in ("To", "From", "Url"):
            if name not in form:
                return _error(400, 21201, f"No '{name}' is specified")
        if not _E164.match(form["To"]):
            return _error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
        sid = self.sid("CA")
        self.calls[sid] = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": form["To"],
            "from": form["From"],
            "status": "queued",
            "direction": "outbound-api",
            "duration": None,
            "answered_by": None,
            "api_version": "2010-04-01",
            "uri": f"{PREFIX}/Calls/{sid}.json",
        }
        if planned := await self._planned("calls", created=True):
            return planned
        return web.json_response(self.calls[sid], status=201)

    async def _get_call(self, request: web.Request) -> web.Response:
        if (refused := await self._receive(request)) or (
            refused := await self._planned("call", created=False)
        ):
            return refused
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.json_response(call)

    async def _create_message(self, request: web.Request) -> web.Response:
        if (refused := await self._receive(request)) or (
            refused := await self._planned("messages", created=False)
        ):
            return refused
        form = self.seen[-1].form
        sid = self.sid("SM")
        self.messages[sid] = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "error_code": None,
            "error_message": None,
            "num_segments": "1",
        }
        if planned := await self._planned("messages", created=True):
            return planned
        return web.json_response(self.messages[sid], status=201)

    async def _get_recording(self, request: web.Request) -> web.StreamResponse:
        if (refused := await self._receive(request)) or (
            refused := await self._planned("recording", created=False)
        ):
            return refused
        audio = self.recordings.get(request.match_info["sid"])
        if audio is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.Response(body=audio, content_type="audio/x-wav")

    async def _delete_recording(self, request: web.Request) -> web.Response:
        if (refused := await self._receive(request)) or (
            refused := await self._planned("delete", created=False)
        ):
            return refused
        if self.recordings.pop(request.match_info["sid"], None) is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.Response(status=204)


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)
