"""SQLite statements take one trip to the database thread each, and behave as before.

The trips are counted on the real aiosqlite connection (its ``_execute`` queue), on a real
file database: four trips per statement, as with aiosqlite's own cursors, would fail here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ivr.store import CallRecord, Direction, Store
from ivr.store.models import CALL_EVENTS, CALLS
from ivr.store.sqlite_driver import OneTripConnection
from tests.store.samples import create_call


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'ivr.db'}")
    await store.upgrade()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function the store hands to a connection's thread, by name."""
    handed: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        handed.append(getattr(fn, "func", fn).__name__)  # type: ignore[attr-defined]
        return await original(self, fn, *args)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_a_store_on_sqlite_uses_one_trip_connections(sqlite_store: Store) -> None:
    async with sqlite_store.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)


async def test_a_webhook_turn_takes_one_trip_per_statement(
    sqlite_store: Store, trips: list[str]
) -> None:
    async with sqlite_store.transaction() as tx:
        call = await create_call(tx)
    trips.clear()
    async with sqlite_store.read() as tx:
        assert (await tx.calls.get(call.id)) is not None
    # BEGIN with the SELECT and its rows, then COMMIT.
    assert len(trips) == 2, trips
    trips.clear()
    async with sqlite_store.transaction() as tx:
        assert await tx.calls.advance(call.id, 0, '{"state": "b"}', "<Response/>")
        await tx.events.append_many(call.id, [("KeysPressed", {"keys": "1"}), ("Say", {})])
    # BEGIN IMMEDIATE with the UPDATE, the INSERT of both events, COMMIT.
    assert len(trips) == 3, trips


async def test_rows_counts_and_errors_come_back_from_the_thread(sqlite_store: Store) -> None:
    async with sqlite_store.transaction() as tx:
        call = await create_call(tx)  # INSERT ... RETURNING: the row and its values
        assert call.turn == 0
        assert call.direction is Direction.OUTBOUND
        assert await tx.calls.advance(call.id, 0, "{}", "<Response/>")
        assert not await tx.calls.advance(call.id, 0, "{}", "<Response/>")  # rowcount 0
        await tx.events.append_many(call.id, [("a", {"n": 1}), ("b", {"n": 2})])
    async with sqlite_store.read() as tx:
        assert [e.data["n"] for e in await tx.events.list(call.id)] == [1, 2]
        empty = await tx.session.execute(select(CALLS).where(CALLS.c.id == "nobody"))
        assert empty.mappings().first() is None
    with pytest.raises(IntegrityError):
        await _insert_twice(sqlite_store, call)
    async with sqlite_store.read() as tx:
        assert len(await tx.events.list(call.id)) == 2  # the failed transaction rolled back


async def _insert_twice(store: Store, call: CallRecord) -> None:
    """An event, then the same call row again: the INSERT fails inside the transaction."""
    async with store.transaction() as tx:
        await tx.events.append(call.id, "kept?", {})
        await tx.session.execute(
            CALLS.insert().values(**{c.name: getattr(call, c.name) for c in CALLS.c})
        )


async def test_a_streamed_result_still_yields_every_row(sqlite_store: Store) -> None:
    async with sqlite_store.transaction() as tx:
        call = await create_call(tx)
        await tx.events.append_many(call.id, [("e", {"n": n}) for n in range(150)])
    async with sqlite_store.engine.connect() as connection:
        result = await connection.stream(select(CALL_EVENTS.c.data).order_by(CALL_EVENTS.c.id))
        streamed = [row.data["n"] async for row in result]
        assert streamed == list(range(150))
        assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
