"""Webhooks delivered twice, one after the other or at the same instant, on both databases.

An inbound call is written together with its first turn, and a later turn goes on from the
read that checked the webhook: a second delivery must still get the first one's TwiML, the
plan must move once and the event log hold each turn once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp.plugin import AiohttpServer

from ivr.store import CallStatus, Direction
from tests.store.postgres import PostgresServer
from tests.telephony.fake_twilio_api import ACCOUNT
from tests.web.conftest import CALLER, SHOP_LINE, Server, start_server
from tests.web.test_twilio_webhooks import CALL_SID, action, path_of, twiml, voice_form


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_server(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_server: AiohttpServer
) -> AsyncIterator[Server]:
    overrides = {}
    if request.param == "postgresql":
        postgres = PostgresServer()
        postgres.require_reachable()
        overrides["database_url"] = postgres.create_database().render_as_string(False)
    try:
        async with aiohttp.ClientSession() as http:
            yield await start_server(tmp_path, aiohttp_server, http, **overrides)
    finally:
        if request.param == "postgresql":
            postgres.drop_all()


async def _the_call(server: Server) -> tuple[str, int, list[str]]:
    async with server.store.read() as tx:
        call = await tx.calls.get_by_sid(CALL_SID)
        assert call is not None
        kinds = [e.kind for e in await tx.events.list(call.id)]
    return call.id, call.turn, kinds


async def test_the_first_webhook_delivered_again_is_answered_from_the_store(
    any_server: Server,
) -> None:
    first = await any_server.post("/twilio/voice", voice_form())
    again = await any_server.post("/twilio/voice", voice_form())
    assert await again.text() == await first.text()
    _, turn, kinds = await _the_call(any_server)
    assert turn == 1
    assert kinds.count("CallAnswered") == 1


async def test_the_first_webhook_delivered_twice_at_once_takes_one_turn(
    any_server: Server,
) -> None:
    answers = await asyncio.gather(
        *(any_server.post("/twilio/voice", voice_form()) for _ in range(2))
    )
    bodies = {await answer.text() for answer in answers}
    assert len(bodies) == 1, bodies  # the loser answers with the winner's TwiML
    ref, turn, kinds = await _the_call(any_server)
    assert turn == 1
    assert kinds.count("CallAnswered") == 1
    assert f"call={ref}&" in bodies.pop()  # the action URLs name the stored call


async def test_a_gather_delivered_twice_at_once_moves_the_plan_once(any_server: Server) -> None:
    doc = await twiml(await any_server.post("/twilio/voice", voice_form()))
    gather = path_of(action(doc, "Gather"), any_server)
    form = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "1"}
    answers = await asyncio.gather(*(any_server.post(gather, form) for _ in range(2)))
    bodies = {await answer.text() for answer in answers}
    assert len(bodies) == 1, bodies
    _, turn, kinds = await _the_call(any_server)
    assert turn == 2
    assert kinds.count("KeysPressed") == 1


async def test_a_call_left_at_turn_zero_takes_its_first_turn_on_the_next_delivery(
    server: Server,
) -> None:
    # A call row written before its first turn (by a server that crashed in between).
    async with server.store.transaction() as tx:
        left, _ = await tx.calls.get_or_create_by_sid(
            provider_sid=CALL_SID,
            direction=Direction.INBOUND,
            plan_id="order_status_line",
            plan_hash="",
            from_number=CALLER,
            to_number=SHOP_LINE,
            session_json='{"plan_id": "order_status_line", "state": "menu", "variables": {}}',
            status=CallStatus.IN_PROGRESS,
        )
    doc = await twiml(await server.post("/twilio/voice", voice_form()))
    assert f"call={left.id}&turn=1" in action(doc, "Gather")
    ref, turn, kinds = await _the_call(server)
    assert (ref, turn) == (left.id, 1)
    assert kinds.count("CallAnswered") == 1
