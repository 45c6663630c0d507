"""What a restarted scheduler does with the fallback SMS a crash left behind.

A fallback SMS is recorded ``scheduled`` together with the end of its notification and moved
to ``queued`` just before it is handed to the provider. ``reconcile`` sends the ones still
``scheduled`` (certainly never sent) and leaves ``queued`` ones without a sid alone (they may
have reached the provider: sending again could text the person twice).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.outbound import scheduler
from ivr.store import Direction, SmsStatus
from ivr.web.app import OUTBOUND, SIMULATOR, AppParts, create_app
from tests.conftest import DIALPLANS

CALLER_ID = "+12025550100"


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
