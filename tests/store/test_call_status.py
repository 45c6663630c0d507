"""Status callbacks repeat and arrive out of order; a call never leaves a final status."""

from __future__ import annotations

import asyncio
import random

import pytest

from ivr.store import FINAL_CALL_STATUSES, CallStatus, Store, Transaction
from tests.store.samples import create_call


async def test_status_moves_forward_and_stamps_the_times(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        assert await tx.calls.update_status(CallStatus.INITIATED, ref=call.id)
        assert await tx.calls.update_status("ringing", ref=call.id)
        assert await tx.calls.update_status("in-progress", ref=call.id, answered_by="human")
        answered = await tx.calls.get(call.id)
        assert await tx.calls.update_status("completed", ref=call.id, duration_seconds=42)
        ended = await tx.calls.get(call.id)
    assert answered is not None
    assert ended is not None
    assert answered.answered_at is not None
    assert answered.ended_at is None
    assert ended.status is CallStatus.COMPLETED
    assert ended.is_final
    assert (ended.answered_by, ended.duration_seconds) == ("human", 42)
    assert ended.answered_at == answered.answered_at
    assert ended.ended_at is not None
    assert ended.ended_at >= answered.answered_at


async def test_late_and_repeated_callbacks_change_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        assert await tx.calls.update_status("in-progress", ref=call.id)
        assert not await tx.calls.update_status("ringing", ref=call.id)
        assert not await tx.calls.update_status("in-progress", ref=call.id)
        assert await _status(tx, call.id) is CallStatus.IN_PROGRESS


@pytest.mark.parametrize("final", sorted(FINAL_CALL_STATUSES))
async def test_nothing_leaves_a_final_status(store: Store, final: CallStatus) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        assert await tx.calls.update_status(final, ref=call.id, duration_seconds=5)
        ended = await tx.calls.get(call.id)
        for later in CallStatus:
            assert not await tx.calls.update_status(later, ref=call.id, duration_seconds=99)
        after = await tx.calls.get(call.id)
    assert after == ended


async def test_status_by_provider_sid(store: Store) -> None:
    sid = "CA" + "5" * 32
    async with store.transaction() as tx:
        call = await create_call(tx)
        # Before the sid is known, a callback by sid finds nothing.
        assert not await tx.calls.update_status("ringing", sid=sid)
        await tx.calls.set_sid(call.id, sid)
        assert await tx.calls.update_status("ringing", sid=sid)
        assert await _status(tx, call.id) is CallStatus.RINGING


async def test_bad_arguments_are_refused(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        with pytest.raises(ValueError, match="answered"):
            await tx.calls.update_status("answered", ref=call.id)
        with pytest.raises(TypeError, match="exactly one of ref or sid"):
            await tx.calls.update_status("ringing")
        with pytest.raises(TypeError, match="exactly one of ref or sid"):
            await tx.calls.update_status("ringing", ref=call.id, sid="CA1")


async def test_concurrent_out_of_order_callbacks_end_in_the_final_status(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
    callbacks = [*(["initiated", "ringing", "in-progress"] * 5), "completed", "completed"]
    random.Random(4).shuffle(callbacks)
    stores = [store, *(Store.open(store.url) for _ in range(3))]

    async def deliver(index: int, status: str) -> bool:
        async with stores[index % len(stores)].transaction() as tx:
            return await tx.calls.update_status(status, ref=call.id)

    try:
        moved = await asyncio.gather(*(deliver(i, s) for i, s in enumerate(callbacks)))
    finally:
        for other in stores[1:]:
            await other.close()
    moved_to = [status for status, did in zip(callbacks, moved, strict=True) if did]
    assert moved_to.count("completed") == 1
    assert len(moved_to) == len(set(moved_to))
    async with store.transaction() as tx:
        loaded = await tx.calls.get(call.id)
    assert loaded is not None
    assert loaded.status is CallStatus.COMPLETED


async def _status(tx: Transaction, ref: str) -> CallStatus:
    call = await tx.calls.get(ref)
    assert call is not None
    return call.status
