"""What a restarted scheduler does with the fallback SMS a crash left behind.

A fallback SMS is recorded ``scheduled`` together with the end of its notification and moved
to ``queued`` just before it is handed to the provider. ``reconcile`` sends the ones still
``scheduled`` (certainly never sent) and leaves ``queued`` ones without a sid alone (they may
have reached the provider: sending again could text the person twice).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.outbound import scheduler
from ivr.outbound.requests import NotificationRequest
from ivr.store import CallStatus, Direction, SmsStatus
from ivr.telephony.provider import AmbiguousCreate, CallInfo
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, create_app, twilio_provider
from tests.conftest import DIALPLANS

CALLER_ID = "+12025550100"
ANNA = {"name": "Anna", "clinic": "Sunrise Clinic", "when": "2026-11-24T10:00"}


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: AiohttpServer) -> TestServer:
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator", public_url=url, database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS, audio_dir=tmp_path / "audio", var_dir=tmp_path / "var",
    )  # fmt: skip
    # No background scheduler: the test runs reconcile itself.
    return await aiohttp_server(
        create_app(settings, url, AppParts(recognizer=None, background=False)), port=port
    )


async def test_reconcile_sends_recorded_sms_once_and_never_resends_ambiguous_ones(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "UNSENT_SMS_GRACE", 0.0)
    store = server.app[OUTBOUND].notifications.store
    async with store.transaction() as tx:
        left = await tx.sms.create(
            direction=Direction.OUTBOUND, from_number=CALLER_ID, to_number="+12125550101",
            body="never sent", status=SmsStatus.SCHEDULED,
        )  # fmt: skip
        await tx.sms.create(
            direction=Direction.OUTBOUND, from_number=CALLER_ID, to_number="+12125550102",
            body="maybe sent",
        )  # fmt: skip
    for _ in range(2):
        await server.app[OUTBOUND].scheduler.reconcile()
    simulator = server.app[SIMULATOR]
    await simulator.wait_idle(10)
    assert [(m.to, m.body) for m in simulator.messages.values()] == [("+12125550101", "never sent")]
    async with store.read() as tx:
        sent = await tx.sms.get(left.id)
    assert sent is not None
    assert sent.provider_sid is not None


DEAD = "http://127.0.0.1:9"  # the discard port: nothing answers there


class ServerDiesAfterCreate:
    """The real REST client, as seen by a server that died right after its ``Calls.json``:
    the provider placed the call, but its answer and the call's webhooks never arrived."""

    def __init__(self, real: Any, *, reaches_provider: bool) -> None:
        self.real = real
        self.reaches_provider = reaches_provider

    async def place_call(self, **fields: Any) -> CallInfo:
        if self.reaches_provider:
            await self.real.place_call(
                **{**fields, "answer_url": f"{DEAD}/voice", "status_url": f"{DEAD}/status"}
            )
        raise AmbiguousCreate("the server died before the answer", resource="call")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def start_dying_server(
    tmp_path: Path, aiohttp_server: AiohttpServer, *, reaches_provider: bool, grace: float
) -> TestServer:
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        provider="simulator", public_url=url, database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS, audio_dir=tmp_path / "audio", var_dir=tmp_path / "var",
        call_window="00:00-24:00", ring_timeout=1, unconfirmed_call_grace=grace,
    )  # fmt: skip

    def provider(http: aiohttp.ClientSession, settings: Settings) -> Any:
        return ServerDiesAfterCreate(
            twilio_provider(http, settings), reaches_provider=reaches_provider
        )

    parts = AppParts(provider=provider, recognizer=None, background=False)
    return await aiohttp_server(create_app(settings, url, parts), port=port)


async def first_attempt(server: TestServer, to: str) -> str:
    """Create a notification and dial its first attempt; the attempt's call reference."""
    outbound = server.app[OUTBOUND]
    request = NotificationRequest(
        to=to, plan="appointment_reminder", variables=ANNA, attempts={"max": 2, "retry_after": "1h"}
    )
    doc, _ = await outbound.notifications.create(request)
    assert await outbound.scheduler.tick() == 1
    async with outbound.notifications.store.read() as tx:
        [call] = await tx.calls.for_notification(str(doc["id"]))
    assert call.provider_sid is None  # the create's answer was lost
    await asyncio.sleep(1.1)  # reconcile looks at attempts quiet for longer than the ring timeout
    return call.id


async def test_an_unconfirmed_attempt_the_provider_placed_is_adopted_not_redialed(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    server = await start_dying_server(tmp_path, aiohttp_server, reaches_provider=True, grace=3600)
    ref = await first_attempt(server, "+12125550111")
    simulator = server.app[SIMULATOR]
    await simulator.wait_idle(10)  # the call fails at the provider: its answer URL is dead
    [placed] = simulator.calls_to("+12125550111")

    await server.app[OUTBOUND].scheduler.reconcile()

    store = server.app[OUTBOUND].notifications.store
    async with store.read() as tx:
        call = await tx.calls.get(ref)
        events = [(e.kind, e.data) for e in await tx.events.list(ref)]
    assert call is not None
    assert call.provider_sid == placed.sid
    assert call.is_final
    assert ("reconciled", {"adopted_sid": placed.sid}) in events
    assert [c.sid for c in simulator.calls_to("+12125550111")] == [placed.sid]  # no second call
    listed = [r for r in simulator.api_requests if r.method == "GET" and "Calls.json" in r.path]
    assert listed


async def test_an_unconfirmed_attempt_the_provider_never_saw_fails_after_the_grace(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    server = await start_dying_server(tmp_path, aiohttp_server, reaches_provider=False, grace=0)
    ref = await first_attempt(server, "+12125550112")
    await server.app[OUTBOUND].scheduler.reconcile()
    async with server.app[OUTBOUND].notifications.store.read() as tx:
        call = await tx.calls.get(ref)
        events = [(e.kind, e.data) for e in await tx.events.list(ref)]
    assert call is not None
    assert call.provider_sid is None
    assert call.status == CallStatus.FAILED
    assert ("error", {"never confirmed by the provider": True}) in events
    assert server.app[SIMULATOR].calls_to("+12125550112") == []
