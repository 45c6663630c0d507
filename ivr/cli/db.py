"""``ivr db``: bring the database schema up to date and show where it stands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ivr.store.db import (
    DATABASE_URL_VARIABLE,
    DEFAULT_DATABASE_URL,
    DatabaseURLError,
    normalize_database_url,
)
from ivr.store.migrate import database_revision, head_revision, upgrade_database

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")


def _database_url_option(command: F) -> F:
    return click.option(
        "--database-url",
        envvar=DATABASE_URL_VARIABLE,
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        show_envvar=True,
        help="Database URL: sqlite:///path.db or postgresql://user@host/dbname.",
    )(command)


@click.group()
def db() -> None:
    """The database: migrations of the calls, events, SMS and opt-out tables."""


@db.command()
@_database_url_option
def upgrade(database_url: str) -> None:
    """Apply every pending migration (the server also does this at start-up)."""
    shown = _shown(database_url)
    revision = _run_on_database(shown, upgrade_database(database_url))
    click.echo(f"{shown}: at revision {revision} (head)")


@db.command()
@_database_url_option
def current(database_url: str) -> None:
    """Print the database's migration revision and whether it is the newest."""
    shown = _shown(database_url)
    revision = _run_on_database(shown, database_revision(database_url))
    head = head_revision()
    if revision is None:
        click.echo(f"{shown}: no migrations applied; run `ivr db upgrade`")
    elif revision == head:
        click.echo(f"{shown}: at revision {revision} (head)")
    else:
        click.echo(f"{shown}: at revision {revision}, newest is {head}; run `ivr db upgrade`")


def _shown(database_url: str) -> str:
    """The URL as it is used (async driver chosen), without its password; bad URLs stop here."""
    try:
        return normalize_database_url(database_url).render_as_string(hide_password=True)
    except DatabaseURLError as exc:
        raise click.ClickException(str(exc)) from exc


def _run_on_database(shown: str, work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except DBAPIError as exc:
        raise click.ClickException(f"{shown}: {exc.orig}") from exc
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"{shown}: {exc}") from exc


COMMANDS = (db,)
