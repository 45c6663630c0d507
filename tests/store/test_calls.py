"""Calls: creation, provider sids, and turns that advance once however often a webhook comes."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC

import pytest
from sqlalchemy.exc import IntegrityError

from ivr.store import CallStatus, Direction, Store
from tests.store.samples import CALLER, ROBOT, create_call


async def test_create_gives_an_opaque_reference_and_turn_zero(store: Store) -> None:
    async with store.transaction() as tx:
        first = await create_call(tx)
        second = await create_call(tx)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", first.id)
    assert first.id != second.id
    async with store.transaction() as tx:
        loaded = await tx.calls.get(first.id)
    assert loaded == first
    assert (loaded.turn, loaded.status, loaded.direction) == (0, "queued", Direction.OUTBOUND)
    assert loaded.provider_sid is None
    assert loaded.created_at.tzinfo is UTC
    assert not loaded.is_final


async def test_unknown_references_are_none(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.calls.get("no-such-call") is None
        assert await tx.calls.get_by_sid("CA" + "0" * 32) is None


async def test_set_sid_once(store: Store) -> None:
    sid = "CA" + "1" * 32
    async with store.transaction() as tx:
        call = await create_call(tx)
        assert await tx.calls.set_sid(call.id, sid)
        # Repeating the same sid is harmless; a different one would mean a second call.
        assert await tx.calls.set_sid(call.id, sid)
        assert not await tx.calls.set_sid(call.id, "CA" + "2" * 32)
        assert not await tx.calls.set_sid("no-such-call", sid)
        found = await tx.calls.get_by_sid(sid)
    assert found is not None
    assert (found.id, found.provider_sid) == (call.id, sid)


async def test_a_provider_sid_belongs_to_one_call(store: Store) -> None:
    sid = "CA" + "3" * 32
    async with store.transaction() as tx:
        first = await create_call(tx)
        second = await create_call(tx)
        await tx.calls.set_sid(first.id, sid)
    with pytest.raises(IntegrityError):
        async with store.transaction() as tx:
            await tx.calls.set_sid(second.id, sid)


async def test_advance_stores_the_turn_and_refuses_a_stale_one(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
    async with store.transaction() as tx:
        assert await tx.calls.advance(
            call.id, 0, '{"state": "ask"}', "<Response>1</Response>", answered_by="human"
        )
    async with store.transaction() as tx:
        # The same webhook again (turn 0 in its URL): nothing changes.
        assert not await tx.calls.advance(call.id, 0, '{"state": "x"}', "<Response>x</Response>")
        assert await tx.calls.advance(
            call.id, 1, '{"state": "done"}', "<Response>2</Response>", outcome="confirmed"
        )
        assert not await tx.calls.advance("no-such-call", 0, "{}", "<Response/>")
        loaded = await tx.calls.get(call.id)
    assert loaded is not None
    assert loaded.turn == 2
    assert loaded.session_json == '{"state": "done"}'
    assert loaded.last_response == "<Response>2</Response>"
    assert (loaded.outcome, loaded.answered_by) == ("confirmed", "human")
    assert loaded.updated_at >= call.updated_at


async def test_concurrent_deliveries_of_one_webhook_advance_once(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
    # Four stores stand for four server processes sharing the database.
    stores = [store, *(Store.open(store.url) for _ in range(3))]
    read_turns: list[int] = []
    # On PostgreSQL reads do not wait for writers: no delivery writes before two have read the
    # same turn, so the race the conditional UPDATE settles happens on any machine, not only
    # when the scheduling happens to interleave them. (SQLite serializes the transactions.)
    two_read = asyncio.Event()

    async def deliver(delivery: int) -> bool:
        async with stores[delivery % len(stores)].transaction() as tx:
            loaded = await tx.calls.get(call.id)
            assert loaded is not None
            read_turns.append(loaded.turn)
            if read_turns.count(0) >= 2:
                two_read.set()
            if store.backend == "postgresql":
                await asyncio.wait_for(two_read.wait(), 30)
            # The handler runs the dial plan between reading and writing: widen that window.
            await asyncio.sleep(0.01)
            return await tx.calls.advance(
                call.id, 0, f'{{"delivery": {delivery}}}', f"<Response>{delivery}</Response>"
            )

    try:
        results = await asyncio.gather(*(deliver(n) for n in range(20)))
    finally:
        for other in stores[1:]:
            await other.close()
    assert results.count(True) == 1
    winner = results.index(True)
    async with store.transaction() as tx:
        loaded = await tx.calls.get(call.id)
    assert loaded is not None
    assert loaded.turn == 1
    assert loaded.last_response == f"<Response>{winner}</Response>"
    assert loaded.session_json == f'{{"delivery": {winner}}}'
    if store.backend == "postgresql":
        # Several deliveries saw turn 0 at once: the conditional UPDATE decided.
        assert read_turns.count(0) > 1


async def test_inbound_first_webhook_twice_at_once_creates_one_call(store: Store) -> None:
    sid = "CA" + "4" * 32
    stores = [store, *(Store.open(store.url) for _ in range(3))]

    async def deliver(delivery: int) -> tuple[str, bool]:
        async with stores[delivery % len(stores)].transaction() as tx:
            record, created = await tx.calls.get_or_create_by_sid(
                provider_sid=sid,
                direction=Direction.INBOUND,
                plan_id="order_status",
                plan_hash="b" * 64,
                from_number=CALLER,
                to_number=ROBOT,
                session_json="{}",
            )
            return record.id, created

    try:
        results = await asyncio.gather(*(deliver(n) for n in range(8)))
    finally:
        for other in stores[1:]:
            await other.close()
    assert [created for _, created in results].count(True) == 1
    assert len({ref for ref, _ in results}) == 1
    async with store.transaction() as tx:
        loaded = await tx.calls.get_by_sid(sid)
    assert loaded is not None
    assert (loaded.status, loaded.direction) == (CallStatus.RINGING, Direction.INBOUND)
