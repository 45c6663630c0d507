"""Fixtures for the REST client tests: a local fake of Twilio's API and a client for it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from ivr.telephony.twilio import RetryPolicy, TwilioRestClient
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN, FakeTwilioApi

# Short enough to keep the suite fast, long enough for a loaded CI machine to answer.
READ_TIMEOUT = 0.3
FAST_RETRIES = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.04, max_retry_after=30.0)


class Sleeps:
    """Stands in for ``asyncio.sleep``: remembers each delay instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def fake_api(aiohttp_server: AiohttpServer) -> AsyncIterator[FakeTwilioApi]:
    fake = FakeTwilioApi()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.release.set()  # let stalled handlers finish before the server shuts down


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


MakeClient = Callable[..., TwilioRestClient]


@pytest.fixture
def make_client(
    fake_api: FakeTwilioApi, session: aiohttp.ClientSession, sleeps: Sleeps
) -> MakeClient:
    def make(**overrides: Any) -> TwilioRestClient:
        options: dict[str, Any] = {
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "api_base": fake_api.base_url,
            "retry": FAST_RETRIES,
            "connect_timeout": 2.0,
            "read_timeout": READ_TIMEOUT,
            "sleep": sleeps,
            "rng": random.Random(7),
            **overrides,
        }
        return TwilioRestClient(session, **options)

    return make
