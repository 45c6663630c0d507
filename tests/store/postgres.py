"""Throwaway databases on the PostgreSQL test server (127.0.0.1:5432 unless told otherwise)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ivr.store import normalize_database_url

T = TypeVar("T")

# The CI machine and development machines run PostgreSQL here with trust authentication.
POSTGRES_URL = os.environ.get("IVR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONNECT_TIMEOUT_SECONDS = 5


def run_outside_event_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous fixture code.

    A thread of its own keeps asyncio.run away from the event loop pytest-asyncio manages.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


class PostgresServer:
    """Creates databases named ivr_test_<random>_<n> and drops them all at the end."""

    def __init__(self, url: str = POSTGRES_URL) -> None:
        self.admin_url = normalize_database_url(url)
        self.address = f"{self.admin_url.host or 'localhost'}:{self.admin_url.port or 5432}"
        self.prefix = f"ivr_test_{secrets.token_hex(4)}"
        self.created: list[str] = []

    def require_reachable(self) -> None:
        """Fail (never skip) the requesting test when the server does not answer."""
        try:
            run_outside_event_loop(self._execute("SELECT 1"))
        except Exception as exc:
            pytest.fail(
                f"PostgreSQL server at {self.address} is not reachable ({exc!r}); the store "
                "tests need it (start it, or point IVR_TEST_POSTGRES_URL at another server)",
                pytrace=False,
            )

    def create_database(self) -> URL:
        name = f"{self.prefix}_{len(self.created)}"
        run_outside_event_loop(self._execute(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin_url.set(database=name)

    def drop_all(self) -> None:
        # Concurrently: each DROP DATABASE waits for a checkpoint, and waiting drops share one.
        drops = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.created]
        run_outside_event_loop(self._execute_all(drops))
        self.created.clear()

    async def _execute_all(self, statements: list[str]) -> None:
        await asyncio.gather(*(self._execute(statement) for statement in statements))

    async def _execute(self, statement: str) -> None:
        engine = create_async_engine(
            self.admin_url,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()


def postgres_url_with_closed_port() -> URL:
    """A URL nobody listens on, to show what an unreachable server looks like."""
    return make_url(POSTGRES_URL).set(host="127.0.0.1", port=9)
