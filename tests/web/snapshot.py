"""Every row of every table, to show that a rejected request changed nothing."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from sqlalchemy import select

from ivr.store import Store
from ivr.store.models import Base

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(store: Store) -> Snapshot:
    """The rows of each table, in a stable order (tests read the tables, product code never)."""
    tables: Snapshot = {}
    async with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


def sqlite_snapshot(path: str) -> Snapshot:
    """``snapshot`` of a SQLite file read with the stdlib driver: the same rows, read in a
    tenth of a millisecond instead of a few (a property test takes hundreds of them)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        tables: Snapshot = {}
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(f'SELECT * FROM "{table.name}"').fetchall()
            tables[table.name] = sorted(rows, key=repr)
        return tables
