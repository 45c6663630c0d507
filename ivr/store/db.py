"""Database URLs and engines: the plain URL a user writes becomes a configured async engine.

Users write ``sqlite:///var/ivr.db`` or ``postgresql://user@host/db``; SQLAlchemy's async engine
needs ``sqlite+aiosqlite://`` and ``postgresql+asyncpg://``. The driver is picked here so that
nobody has to know which async driver the product uses.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from ivr.store.sqlite_driver import OneTripConnection, connect_one_trip

DATABASE_URL_VARIABLE = "IVR_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///var/ivr.db"

# How long a SQLite connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_BACKEND_NAMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
_EXAMPLES = "sqlite:///var/ivr.db or postgresql://user@host/dbname"


class DatabaseURLError(ValueError):
    """A database URL that cannot be used; the message names the setting it came from."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{DATABASE_URL_VARIABLE}: {problem}")


def normalize_database_url(url: str | URL) -> URL:
    """The async-driver URL for what a user wrote, or a DatabaseURLError saying what is wrong."""
    if isinstance(url, str):
        text = url.strip()
        if not text:
            raise DatabaseURLError(f"empty; expected a database URL such as {_EXAMPLES}")
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError) as exc:
            raise DatabaseURLError(
                f"cannot parse {text!r} as a database URL; expected e.g. {_EXAMPLES}"
            ) from exc
    else:
        parsed = url
    shown = parsed.render_as_string(hide_password=True)
    backend_name, _, driver = parsed.drivername.partition("+")
    backend = _BACKEND_NAMES.get(backend_name)
    if backend is None:
        raise DatabaseURLError(
            f"unsupported database {backend_name!r} in {shown}; use SQLite or PostgreSQL, "
            f"e.g. {_EXAMPLES}"
        )
    async_driver = _ASYNC_DRIVERS[backend]
    if driver and driver != async_driver:
        raise DatabaseURLError(
            f"driver {driver!r} in {shown} is not supported; write the URL without a driver "
            f"({backend}://...) and {async_driver} is used"
        )
    if backend == "sqlite":
        return _normalize_sqlite(parsed.set(drivername=f"sqlite+{async_driver}"), shown)
    return _normalize_postgresql(parsed.set(drivername=f"postgresql+{async_driver}"), shown)


def _normalize_sqlite(url: URL, shown: str) -> URL:
    if url.host or url.username or url.port:
        raise DatabaseURLError(
            f"{shown} names a host; SQLite paths follow three slashes "
            "(sqlite:///var/ivr.db is relative, sqlite:////srv/ivr.db is absolute)"
        )
    return url


def _normalize_postgresql(url: URL, shown: str) -> URL:
    if not url.database:
        raise DatabaseURLError(f"{shown} names no database; expected postgresql://user@host/dbname")
    # libpq spells TLS as sslmode=...; asyncpg takes the same modes as ssl=...
    if "sslmode" in url.query:
        sslmode = url.query["sslmode"]
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
    return url


def backend_of(url: URL) -> str:
    """``sqlite`` or ``postgresql`` for a normalized URL."""
    return url.get_backend_name()


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points to, or None for an in-memory or URI-style database."""
    database = url.database
    if backend_of(url) != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine for ``url`` (normalized first), configured for how the store uses it."""
    normalized = normalize_database_url(url)
    if backend_of(normalized) == "sqlite":
        path = sqlite_file(normalized)
        if path is not None:
            # The default lives under ./var/, which a fresh checkout does not have yet.
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(normalized)
        # Each statement one trip to the connection's thread, not four (see sqlite_driver).
        event.listen(engine.sync_engine, "do_connect", connect_one_trip)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "begin", _begin_sqlite_write_transaction)
        return engine
    engine = create_async_engine(normalized)
    event.listen(engine.sync_engine, "checkin", _remember_checkin)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


# A pooled connection may have died with a PostgreSQL restart or failover; one that sat idle
# longer than this is pinged before use. Not every checkout: asyncpg's ping is three round
# trips (BEGIN, a query, ROLLBACK), a third of the traffic of a busy server's short
# transactions, and a connection back in use within seconds is as alive as a pinged one.
PING_AFTER_IDLE_SECONDS = 2.0
_CHECKED_IN = "ivr_checked_in"


def _remember_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    idle_since = record.info.get(_CHECKED_IN)
    if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE_SECONDS:
        return  # new, or used a moment ago
    try:
        dbapi_connection.ping()
    except Exception as exc:
        # The pool discards this connection and checks out (or opens) another.
        raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


def _configure_sqlite_connection(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is switched off so that _begin_sqlite_write_transaction
    # decides how a transaction starts (the recipe in SQLAlchemy's SQLite documentation).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Before anything else: every later statement on this connection then waits up to
        # this long for another connection's lock instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_write_ahead_log(cursor)
        # NORMAL sync in WAL mode survives a process crash (only an OS crash or power loss can
        # lose the latest commits) and saves an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _use_write_ahead_log(cursor: Any) -> None:
    """Switch the database to WAL, which lets readers proceed while one writer commits.

    The mode is stored in the file, so this only does work on a new database. The switch needs
    an exclusive lock and SQLite does not call the busy handler for it: when several processes
    open a new database at once, the losers retry here for up to the busy timeout.
    """
    cursor.execute("PRAGMA journal_mode")
    if cursor.fetchone()[0] in ("wal", "memory"):
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:  # aiosqlite raises the sqlite3 exceptions
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        # Blocks the event loop briefly, once per process, only for a brand-new database.
        time.sleep(0.01)


# Execution option of a connection that will only read: it begins with a plain BEGIN.
READ_ONLY = "ivr_read_only"


def _begin_sqlite_write_transaction(connection: Connection) -> None:
    # A deferred BEGIN that later writes fails at once with "database is locked" when another
    # connection wrote in between (the busy timeout does not apply to that upgrade). Taking the
    # write lock up front makes concurrent writers queue on busy_timeout instead. A read-only
    # transaction takes no lock: in WAL mode it reads a snapshot while a writer commits.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
    driver = connection.connection.driver_connection
    if isinstance(driver, OneTripConnection):
        driver.begin_with_next_statement(begin)
    else:
        connection.exec_driver_sql(begin)
