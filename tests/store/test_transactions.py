"""The unit of work: all or nothing, one per task, on correctly configured connections."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL

from ivr.store import (
    CallEventRecord,
    CallRecord,
    Direction,
    EventKind,
    NestedTransactionError,
    OptOutRecord,
    OptOutSource,
    SmsRecord,
    Store,
    db,
)
from ivr.store.models import Base, Call, CallEvent, OptOut, SmsMessage, UTCDateTime
from tests.store.samples import CALLER, ROBOT, create_call


class WebhookFailed(Exception):
    pass


async def _failing_webhook(store: Store, existing_ref: str, refs: dict[str, str]) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        refs["call"] = call.id
        await tx.events.append(call.id, EventKind.WEBHOOK, {"turn": 0})
        await tx.calls.advance(existing_ref, 0, '{"state": "x"}', "<Response/>")
        await tx.calls.update_status("completed", ref=existing_ref)
        message = await tx.sms.create(
            direction=Direction.OUTBOUND, from_number=ROBOT, to_number=CALLER, body="hi"
        )
        refs["sms"] = message.id
        await tx.opt_outs.opt_out(CALLER, "*", OptOutSource.SMS)
        raise WebhookFailed


async def test_a_failing_transaction_leaves_nothing_behind(store: Store) -> None:
    async with store.transaction() as tx:
        existing = await create_call(tx)
    refs: dict[str, str] = {}
    with pytest.raises(WebhookFailed):
        await _failing_webhook(store, existing.id, refs)
    async with store.transaction() as tx:
        assert await tx.calls.get(refs["call"]) is None
        assert await tx.events.list(refs["call"]) == []
        assert await tx.calls.get(existing.id) == existing
        assert await tx.sms.get(refs["sms"]) is None
        assert await tx.sms.list_for(number=CALLER) == []
        assert not await tx.opt_outs.is_opted_out(CALLER, "marketing")


async def test_nesting_transactions_is_refused(store: Store) -> None:
    async with store.transaction():
        with pytest.raises(NestedTransactionError):
            async with store.transaction():
                pass
    # The refusal did not leave the store unusable.
    async with store.transaction() as tx:
        await create_call(tx)


async def test_concurrent_tasks_each_get_their_own_transaction(store: Store) -> None:
    async def create() -> str:
        async with store.transaction() as tx:
            return (await create_call(tx)).id

    refs = await asyncio.gather(*(create() for _ in range(25)))
    async with store.transaction() as tx:
        assert all([await tx.calls.get(ref) is not None for ref in refs])


async def test_in_memory_database_serves_concurrent_tasks() -> None:
    async with Store.open("sqlite:///:memory:") as store:
        await store.upgrade()

        async def create(fail: bool) -> str | None:
            try:
                async with store.transaction() as tx:
                    ref = (await create_call(tx)).id
                    await asyncio.sleep(0)
                    if fail:
                        raise WebhookFailed
                    return ref
            except WebhookFailed:
                return None

        # One shared connection: a rollback must not take other tasks' work with it.
        refs = await asyncio.gather(*(create(fail=n % 3 == 0) for n in range(12)))
        async with store.transaction() as tx:
            kept = [ref for ref in refs if ref is not None]
            assert len(kept) == 8
            assert all([await tx.calls.get(ref) is not None for ref in kept])


async def test_sqlite_connections_are_configured(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("pragmas") / "ivr.db"
    async with Store.open(f"sqlite:///{path}") as store, store.engine.connect() as connection:
        values = {
            pragma: (await connection.exec_driver_sql(f"PRAGMA {pragma}")).scalar()
            for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


def test_timestamps_are_stored_in_utc_and_naive_ones_refused() -> None:
    column = UTCDateTime()
    dialect = sqlite.dialect()
    moscow = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    assert column.process_bind_param(moscow, dialect) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 3, 1, 12, 0), dialect)
    assert column.process_result_value(datetime(2026, 3, 1, 9, 0), dialect) == datetime(
        2026, 3, 1, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("record", "model"),
    [
        (CallRecord, Call),
        (CallEventRecord, CallEvent),
        (SmsRecord, SmsMessage),
        (OptOutRecord, OptOut),
    ],
)
def test_records_carry_every_column(record: type, model: type[Base]) -> None:
    # A column added to a model (and its migration) must show up in what the repositories return.
    assert [f.name for f in fields(record)] == [c.name for c in model.__table__.columns]


async def test_read_transactions_see_committed_rows(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
        await tx.events.append_many(call.id, [("Say", {"text": "one"}), ("Listen", {"n": 2})])
    async with store.read() as tx:
        assert [e.kind for e in await tx.events.list(call.id)] == ["Say", "Listen"]
        assert [e.data for e in await tx.events.list(call.id)] == [{"text": "one"}, {"n": 2}]


async def test_a_read_does_not_wait_for_a_writer(store: Store) -> None:
    async with store.transaction() as tx:
        call = await create_call(tx)
    writer_inside, reader_done = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        async with store.transaction() as tx:
            await tx.events.append(call.id, "slow", {})
            writer_inside.set()
            await asyncio.wait_for(reader_done.wait(), timeout=10)

    async def reader() -> None:
        await writer_inside.wait()
        async with store.read() as tx:
            assert await tx.calls.get(call.id) is not None
            # The writer's event is not committed yet: a read sees the last committed state.
            assert [e.kind for e in await tx.events.list(call.id)] == []
        reader_done.set()

    await asyncio.gather(slow_writer(), reader())


async def test_a_connection_that_died_while_idle_is_replaced(
    postgres_migrated_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a PostgreSQL restart does to the pool: its idle connections are gone.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    async with Store(db.create_engine(postgres_migrated_url)) as store:
        async with store.read() as tx:
            pid = (await tx.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with Store(db.create_engine(postgres_migrated_url)) as admin, admin.read() as tx:
            await tx.session.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))
        async with store.read() as tx:
            again = (await tx.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert again != pid
