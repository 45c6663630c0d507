"""The call event log keeps every entry, in order, and only for calls that exist."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from ivr.store import EventKind, Store
from tests.store.samples import create_call


async def test_events_come_back_in_the_order_they_were_appended(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        other = await create_call(tx)
        await tx.events.append(call.id, EventKind.WEBHOOK, {"path": "/twilio/voice", "turn": 0})
        await tx.events.append(other.id, EventKind.WEBHOOK, {"path": "/twilio/voice"})
        await tx.events.append(call.id, EventKind.PROMPT, {"text": "Здравствуйте, 안녕하세요"})
    async with store.transaction() as tx:
        await tx.events.append(
            call.id,
            EventKind.RECOGNITION,
            {"words": [{"word": "yes", "confidence": 0.93}], "intent": "confirm"},
        )
        await tx.events.append(call.id, "transition", {"from": "ask", "to": "confirmed"})
        await tx.events.append(call.id, EventKind.ERROR)
    async with store.transaction() as tx:
        events = await tx.events.list(call.id)
        other_events = await tx.events.list(other.id)
    assert [e.kind for e in events] == [
        "webhook",
        "prompt",
        "recognition",
        "transition",
        "error",
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[1].data == {"text": "Здравствуйте, 안녕하세요"}
    assert events[2].data["words"] == [{"word": "yes", "confidence": 0.93}]
    assert events[4].data == {}
    assert [e.data for e in other_events] == [{"path": "/twilio/voice"}]


async def test_appending_keeps_earlier_events_unchanged(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        first = await tx.events.append(call.id, EventKind.INPUT, {"digits": "1"})
    async with store.transaction() as tx:
        await tx.events.append(call.id, EventKind.INPUT, {"digits": "2"})
        events = await tx.events.list(call.id)
    assert events[0] == first
    assert [e.data["digits"] for e in events] == ["1", "2"]


async def test_events_need_an_existing_call(store: Store) -> None:
    # SQLite enforces this only with PRAGMA foreign_keys=ON, set on every connection.
    with pytest.raises(IntegrityError):
        async with store.transaction() as tx:
            await tx.events.append("no-such-call", EventKind.WEBHOOK, {})
