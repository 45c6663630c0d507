"""Migrations: from empty to head, matching the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import asyncio
import runpy
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import URL, Connection

from ivr.store import Store, database_revision, head_revision, upgrade_database
from ivr.store.db import create_engine
from ivr.store.migrate import autogenerate_revision, downgrade_engine, upgrade_engine
from ivr.store.models import Base

TABLES = {
    "calls",
    "call_events",
    "sms_messages",
    "opt_outs",
    "notifications",
    "contacts",
    "report_notification_days",
    "report_call_days",
    "report_sms_days",
    "webhook_deliveries",
    "campaigns",
}


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_upgrade_from_empty_reaches_head_and_matches_the_models(
    empty_database_url: URL | str,
) -> None:
    assert await database_revision(empty_database_url) is None
    assert await upgrade_database(empty_database_url) == head_revision() == "0008"
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == TABLES
            assert await connection.run_sync(_schema_differences) == []
    finally:
        await engine.dispose()


async def test_upgrade_twice_changes_nothing(empty_database_url: URL | str) -> None:
    await upgrade_database(empty_database_url)
    assert await upgrade_database(empty_database_url) == head_revision()


async def test_downgrade_to_base_then_upgrade_again(empty_database_url: URL | str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await upgrade_engine(engine)
        await downgrade_engine(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == set()
        await upgrade_engine(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == TABLES
    finally:
        await engine.dispose()


async def test_servers_starting_together_migrate_once(empty_database_url: URL | str) -> None:
    # Several processes upgrading one empty database at start-up: none may fail on
    # "table already exists" (PostgreSQL advisory lock; SQLite BEGIN IMMEDIATE).
    revisions = await asyncio.gather(*(upgrade_database(empty_database_url) for _ in range(4)))
    assert revisions == [head_revision()] * 4


async def test_in_memory_database_is_migrated_through_its_store() -> None:
    async with Store.open("sqlite:///:memory:") as store:
        assert await store.upgrade() == head_revision()
        async with store.engine.connect() as connection:
            assert await connection.run_sync(_table_names) == TABLES


async def test_default_style_path_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "ivr.db"
    assert await upgrade_database(f"sqlite:///{path}") == head_revision()
    assert path.is_file()


async def test_autogenerate_finds_nothing_to_add(tmp_path: Path) -> None:
    script = await autogenerate_revision("nothing", "9999", directory=tmp_path)
    assert script.parent == tmp_path
    revision = runpy.run_path(str(script))
    assert (revision["revision"], revision["down_revision"]) == ("9999", "0008")
    functions = {
        node.name: node.body
        for node in ast.parse(script.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    assert [type(statement) for statement in functions["upgrade"]] == [ast.Pass]
