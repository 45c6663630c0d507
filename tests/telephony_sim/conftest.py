"""Fixtures: a small hand-written IVR server, the simulator on its own port, a REST client.

The IVR server plays the application's role: each path answers fixed TwiML (or TwiML built
from the request), serves prompt audio, and checks ``X-Twilio-Signature`` on every request
with the ``twilio`` package's validator. A fixture teardown fails the test if any request
the simulator sent was not validly signed.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from ivr.speech.audio import TELEPHONY_RATE, mulaw_wav, write_wav
from ivr.telephony.simulator import Simulator, SimulatorSettings
from tests.conftest import FSDD

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "simulator-test-auth-token"
AUTH_HEADERS = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}
ROBOT = "+12025550100"
PERSON = "+12025550123"
PROMPT_SECONDS = 2.0

TwimlSource = str | Callable[[dict[str, str]], str]
ServerFactory = Callable[[web.Application], Any]


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


def tone(seconds: float, frequency: float = 440.0) -> bytes:
    t = np.arange(int(seconds * TELEPHONY_RATE)) / TELEPHONY_RATE
    return np.round(8000 * np.sin(2 * math.pi * frequency * t)).astype("<i2").tobytes()


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    params: dict[str, str]
    signed: bool


class FakeIvr:
    """Answers the simulator's webhooks with TwiML written in the test."""

    def __init__(self) -> None:
        self.routes: dict[str, TwimlSource] = {}
        self.statuses: dict[str, int] = {}  # paths that answer an HTTP error instead
        self.received: list[Received] = []
        self.base = ""
        self._validator = RequestValidator(AUTH_TOKEN)
        self.audio = {
            "/audio/prompt.wav": (mulaw_wav(tone(PROMPT_SECONDS)), "audio/wav"),
            "/audio/pcm.wav": (write_wav(None, tone(1.0), TELEPHONY_RATE), "audio/x-wav"),
            "/audio/not-audio.wav": (b"<html>oops</html>", "text/html"),
        }

    def url(self, path: str) -> str:
        return self.base + path

    def requests_to(self, path: str) -> list[dict[str, str]]:
        return [r.params for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post() if request.method == "POST" else {}
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        signed = self._validator.validate(str(request.url), params, signature)
        query = dict(request.query.items())
        self.received.append(Received(request.method, request.path, params or query, signed))
        if request.path in self.audio:
            body, content_type = self.audio[request.path]
            return web.Response(body=body, content_type=content_type)
        if request.path in self.statuses:
            return web.Response(status=self.statuses[request.path], text="broken")
        source = self.routes.get(request.path)
        if source is None:
            if request.path.endswith("status"):
                return web.Response(status=204)
            return web.Response(status=404, text=f"no route {request.path}")
        text = source(params or query) if callable(source) else source
        return web.Response(text=text, content_type="text/xml")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def ivr(aiohttp_server: ServerFactory) -> AsyncIterator[FakeIvr]:
    fake = FakeIvr()
    server: TestServer = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    yield fake
    unsigned = [f"{r.method} {r.path}" for r in fake.received if not r.signed]
    assert not unsigned, f"requests with a wrong X-Twilio-Signature: {unsigned}"


@pytest.fixture
def settings() -> SimulatorSettings:
    return SimulatorSettings()


@pytest.fixture
async def simulator(settings: SimulatorSettings) -> AsyncIterator[Simulator]:
    sim = Simulator(ACCOUNT_SID, AUTH_TOKEN, audio_dirs=[FSDD], settings=settings)
    await sim.start()
    yield sim
    await sim.close()


class RestClient:
    """What the application does: Twilio REST requests with Basic auth."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str) -> None:
        self.session = session
        self.api_base = api_base

    def url(self, resource: str) -> str:
        return f"{self.api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/{resource}"

    async def post(
        self, resource: str, fields: list[tuple[str, str]] | dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.url(resource), data=fields) as response:
            return response.status, await response.json()

    async def get(self, resource: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(self.url(resource)) as response:
            return response.status, await response.json()

    async def call(self, ivr: FakeIvr, to: str = PERSON, **extra: str | list[str]) -> str:
        fields = [("To", to), ("From", ROBOT), ("Url", ivr.url("/voice"))]
        fields += [("StatusCallback", ivr.url("/status"))]
        for name, value in extra.items():
            fields += [(name, v) for v in ([value] if isinstance(value, str) else value)]
        status, body = await self.post("Calls.json", fields)
        assert status == 201, body
        sid: str = body["sid"]
        return sid


@pytest.fixture
async def rest(simulator: Simulator) -> AsyncIterator[RestClient]:
    assert simulator.api_base is not None
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
        yield RestClient(session, simulator.api_base)
