"""The store and its unit of work: the only way the rest of the product touches the database.

    store = Store.open(url)
    async with store.transaction() as tx:
        call = await tx.calls.get(ref)
        await tx.events.append(ref, EventKind.WEBHOOK, {...})
        won = await tx.calls.advance(ref, turn, session.to_json(), twiml)
    # committed here; an exception inside the block rolls everything back

One transaction per webhook makes "every state change is committed before the response leaves"
a single commit. Repositories live in calls.py, messages.py and opt_outs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.store.calls import CallEventRepository, CallRepository
from ivr.store.campaigns import CampaignRepository
from ivr.store.contact_queries import ContactQueries
from ivr.store.db import READ_ONLY, create_engine
from ivr.store.messages import SmsRepository
from ivr.store.migrate import current_revision, upgrade_engine
from ivr.store.notifications import (
    ContactRepository,
    NotificationRepository,
    WebhookDeliveryRepository,
)
from ivr.store.opt_outs import OptOutRepository
from ivr.store.report_queries import ReportQueries

# The store whose transaction the current task is inside, to refuse nesting (see transaction()).
_open_transaction: ContextVar[Store | None] = ContextVar("ivr_store_transaction", default=None)


class NestedTransactionError(RuntimeError):
    pass


class Transaction:
    """The repositories of one unit of work, all on the same AsyncSession."""

    def __init__(self, session: AsyncSession, backend: str) -> None:
        self.session = session
        self.backend = backend
        self.calls = CallRepository(session, backend)
        self.events = CallEventRepository(session)
        self.sms = SmsRepository(session, backend)
        self.opt_outs = OptOutRepository(session, backend)
        self.notifications = NotificationRepository(session, backend)
        self.contacts = ContactRepository(session, backend)
        self.webhooks = WebhookDeliveryRepository(session)
        self.campaigns = CampaignRepository(session, backend)
        # Read-only queries of the console's reports and contacts pages.
        self.reports = ReportQueries(session, backend)
        self.contact_lists = ContactQueries(session, backend)


class Store:
    """A database (SQLite or PostgreSQL) behind the repositories."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing this process's transactions on a lock hands
        # the database over in order, where SQLite's busy handler polls with growing sleeps: at
        # 100 concurrent calls the lock cut the p99 of a webhook transaction from over 1 s to
        # under 0.5 s. It also keeps the single connection of an in-memory database to one
        # transaction at a time. Other processes still queue on busy_timeout.
        self._writer = asyncio.Lock() if self.backend == "sqlite" else None

    @classmethod
    def open(cls, url: str | URL) -> Store:
        """A store for a user-written URL (see db.normalize_database_url); connects lazily."""
        return cls(create_engine(url))

    @property
    def url(self) -> URL:
        return self.engine.url

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        Keep the block to database work: on SQLite the next transaction waits for this one.
        Nesting transactions of one store in one task would deadlock on SQLite, so it raises
        NestedTransactionError on every backend.
        """
        if _open_transaction.get() is self:
            raise NestedTransactionError("a store transaction is already open in this task")
        token = _open_transaction.set(self)
        try:
            async with (
                self._writer or contextlib.nullcontext(),
                self._sessions() as session,
                session.begin(),
            ):
                yield Transaction(session, self.backend)
        finally:
            _open_transaction.reset(token)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        """A unit of work that only reads: it neither waits for nor blocks SQLite's writer.

        It takes no write lock, so anything that changes the database belongs in
        ``transaction()`` (a write here could fail at once with "database is locked").
        """
        if _open_transaction.get() is self:
            raise NestedTransactionError("a store transaction is already open in this task")
        token = _open_transaction.set(self)
        try:
            async with self._sessions() as session, session.begin():
                # A custom option, read by the connection's begin hook (not one SQLAlchemy types).
                options: Any = {READ_ONLY: True}
                await session.connection(execution_options=options)
                yield Transaction(session, self.backend)
        finally:
            _open_transaction.reset(token)

    async def upgrade(self) -> str | None:
        """Apply pending migrations to this store's database; returns the revision reached.

        Needed instead of ivr.store.migrate.upgrade_database for ``sqlite:///:memory:``, whose
        database exists only inside this store's engine.
        """
        async with self._writer or contextlib.nullcontext():
            await upgrade_engine(self.engine)
            return await current_revision(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
