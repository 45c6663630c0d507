"""Alembic migrations, run from code on the store's async engines.

The migration scripts ship inside the package (ivr/store/migrations/), and the Alembic
configuration is built here rather than read from an alembic.ini, so an installed ``ivr`` can
upgrade its database with ``ivr db upgrade`` or at server start-up (``await upgrade_database``).
Alembic itself is synchronous: it runs on the async connection through ``run_sync``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ivr.store.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Key of the PostgreSQL advisory lock held while migrating: several servers starting at once
# against one database apply each migration once; the others wait, then find nothing to do.
_POSTGRESQL_MIGRATION_LOCK = 0x1F5_0001


def alembic_config(extra_versions_dir: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if extra_versions_dir is not None:
        locations = [MIGRATIONS_DIR / "versions", extra_versions_dir]
        config.set_main_option("version_locations", os.pathsep.join(map(str, locations)))
    # New revision files are named like versions/0002_add_notifications.py.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of the package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database, in one transaction."""
    async with engine.begin() as connection:
        await _lock_for_migration(connection)
        await connection.run_sync(_run_command, command.upgrade, revision)


async def downgrade_engine(engine: AsyncEngine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` for an empty database)."""
    async with engine.begin() as connection:
        await _lock_for_migration(connection)
        await connection.run_sync(_run_command, command.downgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None if no migration was ever applied."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


async def upgrade_database(url: str | URL) -> str | None:
    """Bring the database at ``url`` to the newest migration; returns the revision reached.

    For the server's start-up and ``ivr db upgrade``. Safe to run from several processes at once.
    """
    engine = create_engine(url)
    try:
        await upgrade_engine(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def database_revision(url: str | URL) -> str | None:
    """The revision of the database at ``url`` (None: empty or never migrated)."""
    engine = create_engine(url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def autogenerate_revision(
    message: str, revision_id: str, directory: Path | None = None
) -> Path:
    """Write a new migration with the difference between the models and the newest migration.

    For developers changing ivr/store/models.py: the models are compared with a scratch SQLite
    database brought to head, and the file goes to ``directory`` (default: the shipped
    versions/). Read the generated file, then ``ruff format`` it, before committing it.
    """
    target = directory or MIGRATIONS_DIR / "versions"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            await upgrade_engine(engine)
            async with engine.begin() as connection:
                script = await connection.run_sync(
                    _run_command,
                    command.revision,
                    message=message,
                    autogenerate=True,
                    rev_id=revision_id,
                    version_path=str(target),
                    extra_versions_dir=directory,
                )
        finally:
            await engine.dispose()
    if script is None or isinstance(script, list):  # pragma: no cover - one head, one script
        raise RuntimeError("alembic did not write exactly one revision")
    return Path(script.path)


def _run_command(
    connection: Connection,
    /,
    alembic_command: Callable[..., Any],
    *args: Any,
    extra_versions_dir: Path | None = None,
    **kwargs: Any,
) -> Any:
    config = alembic_config(extra_versions_dir)
    # env.py migrates on this connection instead of opening its own.
    config.attributes["connection"] = connection
    return alembic_command(config, *args, **kwargs)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _lock_for_migration(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends, with the migration committed or rolled back.
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRESQL_MIGRATION_LOCK}
        )
    else:
        # SQLite: the transaction starts with BEGIN IMMEDIATE (see db.py), the same guarantee,
        # sent with its first statement: this one, so the lock is held before alembic runs
        # (alembic's context is global to the process: two upgrades must not interleave).
        await connection.execute(text("SELECT 1"))
