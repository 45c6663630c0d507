"""Alembic environment for the store: migrates on the connection ivr.store.migrate hands in.

The store's engines are async, and Alembic is not: ivr.store.migrate opens the async connection
and calls Alembic inside ``connection.run_sync``, passing the synchronous facade here.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from ivr.store.models import Base, UTCDateTime


def render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    # Revisions must not import model code that may change later: write the plain column type.
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "the store's migrations run through `ivr db upgrade` or ivr.store.migrate, "
        "which pass a database connection; the alembic command line is not set up for them"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: later migrations rebuild the table ("batch" mode).
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
