"""A running server for the JSON API tests: real HTTP on a real port, real SQLite, no scheduler.

``AppParts(background=False)`` keeps the scheduler from dialing, so a notification stays as
the API left it. The provider's REST base points at a closed port: nothing may call out.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer
from yarl import URL

from ivr.config import Settings
from ivr.store import Store
from ivr.web.app import AppParts, create_app
from ivr.web.keys import SERVICES
from tests.conftest import DIALPLANS

TOKEN = "test-api-token-0123456789"
ANNA = "+12025550142"
BORIS = "+12025550143"
REMINDER = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2031-11-24T10:00"}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Api:
    url: str
    server: TestServer
    http: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        return self.server.app[SERVICES].store

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: str | bytes | None = None,
        params: dict[str, str] | None = None,
        token: str | None = TOKEN,
        authorization: str | None = None,
    ) -> Reply:
        """``path`` is sent exactly as written (``%2B`` stays ``%2B``, ``+`` stays ``+``)."""
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = URL(self.url + path, encoded=True)
        if params is not None:
            url = url.with_query(params)
        async with self.http.request(
            method, url, json=json, data=data, params=None, headers=headers
        ) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return Reply(response.status, body, dict(response.headers))

    async def create(self, **fields: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/api/v1/notifications", json=notification_body(**fields))
        assert reply.status == 201, reply.body
        body: dict[str, Any] = reply.body
        return body


def notification_body(**fields: Any) -> dict[str, Any]:
    return {"to": ANNA, "plan": "appointment_reminder", "variables": dict(REMINDER), **fields}


@contextlib.asynccontextmanager
async def running_api(
    tmp_path: Path, aiohttp_server: AiohttpServer, **settings: Any
) -> AsyncIterator[Api]:
    """The app on a real port with ``settings`` over the test defaults, and a client."""
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "provider": "twilio",
        "public_url": url,
        "database_url": f"sqlite:///{tmp_path}/ivr.db",
        "dialplans": DIALPLANS,
        "audio_dir": tmp_path / "audio",
        "var_dir": tmp_path / "var",
        "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": "unused",
        "twilio_from": "+12025550100",
        "twilio_api_base": f"http://127.0.0.1:{unused_port()}",
        "api_token": TOKEN,
        **settings,
    }
    app = create_app(Settings(**values), url, AppParts(background=False, warm_up=False))
    server = await aiohttp_server(app, port=port)
    async with aiohttp.ClientSession() as http:
        yield Api(url, server, http)
