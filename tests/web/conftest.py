"""A running server (real HTTP, real SQLite, real TTS) with a local Twilio REST stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.calls.service import CallService
from ivr.config import Settings
from ivr.store import Store
from ivr.telephony.twilio import SIGNATURE_HEADER, sign
from ivr.web.app import AppParts, create_app
from ivr.web.keys import CALLS
from tests.conftest import DIALPLANS
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN, FakeTwilioApi

CALLER = "+12025550142"
SHOP_LINE = "+15550100"


@dataclass
class Server:
    url: str
    app_server: TestServer
    twilio: FakeTwilioApi
    http: aiohttp.ClientSession

    @property
    def calls(self) -> CallService:
        return self.app_server.app[CALLS]

    @property
    def store(self) -> Store:
        return self.calls.s.store

    async def post(
        self, path: str, form: Mapping[str, str], *, signature: str | None = None
    ) -> aiohttp.ClientResponse:
        """POST a webhook signed as Twilio signs it (or with the given signature)."""
        url = self.url + path
        headers = {SIGNATURE_HEADER: signature if signature is not None else sign(TOKEN, url, form)}
        async with self.http.post(url, data=dict(form), headers=headers) as response:
            await response.read()
            return response


async def start_server(
    tmp_path: Path,
    aiohttp_server: AiohttpServer,
    http: aiohttp.ClientSession,
    warm_up: bool = False,
    **overrides: Any,
) -> Server:
    """The app (provider=twilio) against a fresh ``FakeTwilioApi``; ``overrides``: settings.

    Without ``warm_up`` the server is ready at once and renders prompts on first use (a
    warm-up would render every plan's prompts into each test's own cache)."""
    twilio = FakeTwilioApi()
    twilio_server = await aiohttp_server(twilio.app())
    twilio.base_url = str(twilio_server.make_url("")).rstrip("/")
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="twilio",
        public_url=url,
        database_url=overrides.pop("database_url", f"sqlite:///{tmp_path}/ivr.db"),
        dialplans=overrides.pop("dialplans", DIALPLANS),
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from="+12025550100",
        twilio_api_base=twilio.base_url,
        **overrides,
    )
    app = create_app(settings, url, AppParts(warm_up=warm_up))
    app_server = await aiohttp_server(app, port=port)
    return Server(url, app_server, twilio, http)


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Server]:
    async with aiohttp.ClientSession() as http:
        yield await start_server(tmp_path, aiohttp_server, http)
