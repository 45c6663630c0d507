"""An aiosqlite connection whose statements each take one trip to its database thread.

aiosqlite runs every call on a sqlite3 connection in a thread of its own, and SQLAlchemy's
adapter makes four calls per statement: open a cursor, execute, fetch the rows, close the
cursor. Each is a hand-over to that thread and back to the event loop, and under a burst of
webhooks every hand-over waits for the loop to come round (and for the GIL): a webhook's
write transaction took eleven of them while holding SQLite's single write lock, and the
other webhooks queued behind it. Here a statement's execute, fetch and close run as one
function in the database thread; the cursor SQLAlchemy holds keeps the results. A
transaction's BEGIN travels with its first statement, and a rollback with no transaction
open (the pool's reset after a commit) takes no trip at all: a read is two trips, a
webhook's write transaction three.

Rows are always fetched whole, so a server-side (streaming) cursor is buffered too: the
store never streams results from SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from functools import partial
from types import TracebackType
from typing import Any

import aiosqlite

Description = tuple[tuple[Any, ...], ...] | None


class _Result:
    """What one statement produced, carried back from the database thread."""

    __slots__ = ("description", "lastrowid", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, fetch: bool) -> None:
        self.rows: list[Any] = cursor.fetchall() if fetch and cursor.description else []
        # Read after the fetch: for INSERT ... RETURNING, sqlite3 counts rows as it steps.
        self.description: Description = cursor.description
        self.rowcount: int = cursor.rowcount
        self.lastrowid: int | None = cursor.lastrowid


def _execute(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any
) -> _Result:
    cursor = connection.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        cursor.execute(sql, parameters)
        return _Result(cursor, fetch=True)
    finally:
        cursor.close()


def _executemany(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any
) -> _Result:
    cursor = connection.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        cursor.executemany(sql, parameters)
        return _Result(cursor, fetch=False)
    finally:
        cursor.close()


class OneTripCursor:
    """The part of aiosqlite's Cursor SQLAlchemy uses, with results fetched at execute."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _took(self, result: _Result) -> OneTripCursor:
        self._rows = result.rows
        self.description = result.description
        self.rowcount = result.rowcount
        self.lastrowid = result.lastrowid
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneTripCursor:
        connection = self._connection
        values = () if parameters is None else parameters
        run = partial(_execute, connection._conn, connection.take_begin(), sql, values)
        return self._took(await connection.run(run))

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneTripCursor:
        connection = self._connection
        run = partial(_executemany, connection._conn, connection.take_begin(), sql, parameters)
        return self._took(await connection.run(run))

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        count = self.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchall(self) -> Sequence[Any]:
        taken, self._rows = self._rows, []
        return taken

    def __aiter__(self) -> OneTripCursor:
        return self

    async def __anext__(self) -> Any:
        if not self._rows:
            raise StopAsyncIteration
        return self._rows.pop(0)

    async def setinputsizes(self, *sizes: Any) -> None:
        del sizes  # sqlite3 ignores them too

    async def close(self) -> None:
        self._rows = []


class _OpenCursor:
    """``connection.cursor()``: awaitable and an async context manager, like aiosqlite's."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._cursor = OneTripCursor(connection)

    def __await__(self) -> Generator[Any, None, OneTripCursor]:
        return self._cursor.__aenter__().__await__()

    async def __aenter__(self) -> OneTripCursor:
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._cursor.close()


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection handing out cursors that need no trip of their own."""

    _begin: str | None = None

    def cursor(self) -> _OpenCursor:  # type: ignore[override]
        return _OpenCursor(self)

    async def run(self, statement: Callable[[], _Result]) -> _Result:
        """Run ``statement`` in the connection's thread (one trip)."""
        result: _Result = await self._execute(statement)  # type: ignore[no-untyped-call]
        return result

    def begin_with_next_statement(self, begin: str) -> None:
        """Send ``begin`` (``BEGIN`` or ``BEGIN IMMEDIATE``) in the trip of the transaction's
        first statement instead of a trip of its own."""
        self._begin = begin

    def take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    async def commit(self) -> None:
        if self.take_begin() is not None:
            return  # a transaction without a statement: nothing was begun
        await super().commit()

    async def rollback(self) -> None:
        self.take_begin()
        # SQLAlchemy's pool rolls back every connection it gets back, also one whose
        # transaction just committed: that would be one more trip per transaction.
        if self._connection is not None and not self._connection.in_transaction:
            return
        await super().rollback()


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """Like ``aiosqlite.connect`` (the same arguments SQLAlchemy would pass it)."""
    connection = OneTripConnection(partial(sqlite3.connect, database, **kwargs), 64)
    # As SQLAlchemy does for aiosqlite's own connections: a forgotten one does not hold up exit.
    connection._thread.daemon = True
    return connection


def connect_one_trip(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """The engine's ``do_connect`` hook: SQLAlchemy's aiosqlite adapter around our connection."""
    return dialect.loaded_dbapi.connect(*cargs, async_creator_fn=connect, **cparams)
