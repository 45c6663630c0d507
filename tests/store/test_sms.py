"""SMS messages: provider sids, delivery statuses that never go back, lookups."""

from __future__ import annotations

import asyncio

import pytest

from ivr.store import Direction, SmsRecord, SmsStatus, Store, Transaction
from tests.store.samples import CALLER, ROBOT, create_call

OTHER = "+12025550188"


async def _send(tx: Transaction, to: str = CALLER, *, call_ref: str | None = None) -> SmsRecord:
    return await tx.sms.create(
        direction=Direction.OUTBOUND,
        from_number=ROBOT,
        to_number=to,
        body="Hi, reply C to confirm",
        call_ref=call_ref,
        notification_id="n-1" if call_ref else None,
    )


async def test_delivery_status_moves_forward_only(store: Store) -> None:
    sid = "SM" + "1" * 32
    async with store.transaction() as tx:
        message = await _send(tx)
        assert message.status is SmsStatus.QUEUED
        assert await tx.sms.set_sid(message.id, sid)
        assert await tx.sms.update_status("sending", sid=sid)
        assert await tx.sms.update_status("sent", sid=sid)
        assert not await tx.sms.update_status("sending", sid=sid)
        assert not await tx.sms.update_status("queued", sid=sid)
        assert await tx.sms.update_status("delivered", sid=sid)
        # Late or contradictory callbacks after a final status change nothing.
        assert not await tx.sms.update_status("sent", sid=sid)
        assert not await tx.sms.update_status("failed", sid=sid, error="30003")
        loaded = await tx.sms.get_by_sid(sid)
    assert loaded is not None
    assert (loaded.status, loaded.error, loaded.is_final) == (SmsStatus.DELIVERED, None, True)


async def test_failure_keeps_its_error_code(store: Store) -> None:
    async with store.transaction() as tx:
        message = await _send(tx)
        # The callback can come before the sid is stored: the reference works as well.
        assert await tx.sms.update_status("undelivered", ref=message.id, error="30005")
        loaded = await tx.sms.get(message.id)
    assert loaded is not None
    assert (loaded.status, loaded.error) == (SmsStatus.UNDELIVERED, "30005")


async def test_a_message_keeps_its_first_sid(store: Store) -> None:
    async with store.transaction() as tx:
        message = await _send(tx)
        assert await tx.sms.set_sid(message.id, "SM" + "2" * 32)
        assert not await tx.sms.set_sid(message.id, "SM" + "3" * 32)
        assert not await tx.sms.set_sid("no-such-message", "SM" + "4" * 32)


async def test_unknown_statuses_and_keys_are_refused(store: Store) -> None:
    async with store.transaction() as tx:
        message = await _send(tx)
        with pytest.raises(ValueError, match="bounced"):
            await tx.sms.update_status("bounced", ref=message.id)
        with pytest.raises(TypeError, match="exactly one of sid or ref"):
            await tx.sms.update_status("sent")


async def test_listing_by_number_call_and_notification(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        first = await _send(tx)
        to_other = await _send(tx, OTHER)
        fallback = await _send(tx, call_ref=call.id)
        reply, _ = await tx.sms.get_or_create_by_sid(
            provider_sid="SM" + "5" * 32,
            direction=Direction.INBOUND,
            from_number=CALLER,
            to_number=ROBOT,
            body="C",
        )
    async with store.transaction() as tx:
        for_caller = await tx.sms.list_for(number=CALLER)
        for_other = await tx.sms.list_for(number=OTHER)
        for_call = await tx.sms.list_for(call_ref=call.id)
        for_notification = await tx.sms.list_for(notification_id="n-1")
        with pytest.raises(TypeError):
            await tx.sms.list_for(number=CALLER, call_ref=call.id)
    assert [m.id for m in for_caller] == [first.id, fallback.id, reply.id]
    assert [m.id for m in for_other] == [to_other.id]
    assert [m.id for m in for_call] == [m.id for m in for_notification] == [fallback.id]
    assert (reply.direction, reply.status) == (Direction.INBOUND, SmsStatus.RECEIVED)


async def test_a_repeated_incoming_sms_is_recorded_once(store: Store) -> None:
    sid = "SM" + "6" * 32
    stores = [store, *(Store.open(store.url) for _ in range(3))]

    async def deliver(delivery: int) -> bool:
        async with stores[delivery % len(stores)].transaction() as tx:
            _, created = await tx.sms.get_or_create_by_sid(
                provider_sid=sid,
                direction=Direction.INBOUND,
                from_number=CALLER,
                to_number=ROBOT,
                body="STOP",
            )
            return created

    try:
        created = await asyncio.gather(*(deliver(n) for n in range(8)))
    finally:
        for other in stores[1:]:
            await other.close()
    assert created.count(True) == 1
    async with store.transaction() as tx:
        assert [m.body for m in await tx.sms.list_for(number=CALLER)] == ["STOP"]
