"""Result webhooks against a real local receiver that answers non-2xx: retries, then ``failed``.

The sender's clock is virtual: the test moves it to each due time and calls ``deliver_due``,
so the whole schedule (hours of backoff) is walked in a second and every try is exact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from ivr.outbound.result_webhooks import BACKOFF
from tests.outbound.scheduler_rig import WEBHOOK_SECRET, Rig, start_rig

ANN = "+12125550101"


@dataclass
class Receiver:
    """The integrator's endpoint: answers ``statuses`` in turn (the last one from then on)."""

    statuses: list[int]
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers["X-IVR-Timestamp"]
        expected = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        self.valid.append(request.headers["X-IVR-Signature"] == "sha256=" + expected.hexdigest())
        self.bodies.append(body)
        status = self.statuses[min(len(self.bodies), len(self.statuses)) - 1]
        return web.Response(status=status, text="not now")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Setup:
    rig: Rig
    clock: Clock

    async def finished_notification(self, callback_url: str) -> str:
        """A notification that ends at once (the number is on the do-not-call list)."""
        rig = self.rig
        async with rig.http.put(rig.url(f"/api/v1/do-not-call/{ANN}")) as response:
            assert response.status == 200
        ref = await rig.notify(ANN, callback_url=callback_url)
        assert await rig.tick_all() == 1
        assert (await rig.get(ref))["status"] == "skipped"
        self.clock.now = datetime.now(UTC)  # the sender's time starts after it was enqueued
        return ref

    async def deliveries(self, ref: str) -> list[dict[str, object]]:
        deliveries: list[dict[str, object]] = (await self.rig.get(ref))["webhook_deliveries"]
        return deliveries


@pytest.fixture
async def setup(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Setup]:
    async for rig in start_rig(tmp_path, aiohttp_server):
        clock = Clock()
        rig.webhooks.clock = clock
        yield Setup(rig, clock)


async def receiver(aiohttp_server: AiohttpServer, *statuses: int) -> Receiver:
    result = Receiver(list(statuses))
    app = web.Application()
    app.router.add_post("/results", result.handle)
    result.url = str((await aiohttp_server(app)).make_url("/results"))
    return result


async def test_a_receiver_that_keeps_failing_gets_every_retry_then_failed(
    setup: Setup, aiohttp_server: AiohttpServer
) -> None:
    crm = await receiver(aiohttp_server, 503)
    ref = await setup.finished_notification(crm.url)
    webhooks, clock = setup.rig.webhooks, setup.clock
    assert await webhooks.deliver_due() == 1
    for tries, delay in enumerate(BACKOFF, start=1):
        [delivery] = await setup.deliveries(ref)
        assert delivery["attempt"] == tries
        assert delivery["status"] == "pending"
        assert delivery["response_status"] == 503
        assert delivery["error"] == "HTTP 503"
        due = datetime.fromisoformat(str(delivery["next_try_at"]))
        assert due == clock.now + timedelta(seconds=delay)  # the schedule, exactly
        clock.now = due - timedelta(seconds=1)
        assert await webhooks.deliver_due() == 0  # not before its time
        clock.now = due
        assert await webhooks.deliver_due() == 1
    [delivery] = await setup.deliveries(ref)
    assert delivery["attempt"] == len(BACKOFF) + 1
    assert delivery["status"] == "failed"
    assert delivery["next_try_at"] is None
    clock.now += timedelta(days=30)
    assert await webhooks.deliver_due() == 0  # given up: never tried again
    assert len(crm.bodies) == len(BACKOFF) + 1
    # The same notification every time (its body shows the tries so far, so it changes).
    assert {(json.loads(b)["id"], json.loads(b)["status"]) for b in crm.bodies} == {
        (ref, "skipped")
    }
    assert all(crm.valid)


async def test_a_receiver_that_recovers_gets_it_delivered_once(
    setup: Setup, aiohttp_server: AiohttpServer
) -> None:
    crm = await receiver(aiohttp_server, 500, 429, 204)
    ref = await setup.finished_notification(crm.url)
    webhooks, clock = setup.rig.webhooks, setup.clock
    for expected in (500, 429):
        assert await webhooks.deliver_due() == 1
        [delivery] = await setup.deliveries(ref)
        assert (delivery["status"], delivery["response_status"]) == ("pending", expected)
        clock.now = datetime.fromisoformat(str(delivery["next_try_at"]))
    assert await webhooks.deliver_due() == 1
    [delivery] = await setup.deliveries(ref)
    assert delivery["status"] == "delivered"
    assert (delivery["attempt"], delivery["response_status"], delivery["error"]) == (3, 204, None)
    clock.now += timedelta(days=1)
    assert await webhooks.deliver_due() == 0
    assert len(crm.bodies) == 3


async def test_an_unreachable_receiver_is_retried_with_the_error(setup: Setup) -> None:
    ref = await setup.finished_notification("http://127.0.0.1:1/results")  # nobody listens
    assert await setup.rig.webhooks.deliver_due() == 1
    [delivery] = await setup.deliveries(ref)
    assert (delivery["status"], delivery["attempt"]) == ("pending", 1)
    assert delivery["response_status"] is None
    assert delivery["error"]
    due = datetime.fromisoformat(str(delivery["next_try_at"]))
    assert due == setup.clock.now + timedelta(seconds=BACKOFF[0])
