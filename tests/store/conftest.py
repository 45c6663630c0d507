"""Store fixtures: every repository test runs on SQLite (a file under tmp_path) and PostgreSQL.

PostgreSQL tests use databases created for this test session and dropped at its end. When the
server is not reachable they fail with a message saying so; they are never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from ivr.store import Store, upgrade_database
from ivr.store.models import Base
from tests.store.postgres import PostgresServer, run_outside_event_loop

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.require_reachable()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_migrated_url(postgres_server: PostgresServer) -> URL:
    """One migrated database shared by the session; the store fixture empties it per test."""
    url = postgres_server.create_database()
    run_outside_event_loop(upgrade_database(url))
    return url


@pytest.fixture(scope="session")
def sqlite_migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test: cheaper than migrating every time."""
    path = tmp_path_factory.mktemp("template") / "ivr.db"
    run_outside_event_loop(upgrade_database(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> URL | str:
    """A migrated database of the parametrized backend."""
    if backend == "postgresql":
        url: URL = request.getfixturevalue("postgres_migrated_url")
        return url
    template: Path = request.getfixturevalue("sqlite_migrated_template")
    path = tmp_path / "ivr.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> URL | str:
    """A database of the parametrized backend with no tables at all."""
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database()
    return f"sqlite:///{tmp_path / 'empty' / 'ivr.db'}"


@pytest.fixture
async def store(database_url: URL | str, backend: str) -> AsyncIterator[Store]:
    opened = Store.open(database_url)
    if backend == "postgresql":
        # The session's database is shared: start every test from empty tables.
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with opened.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield opened
    finally:
        await opened.close()
