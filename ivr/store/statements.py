"""Pieces of SQL the repositories share: references, status ranks, dialect-specific upserts."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import Column, ColumnElement, CursorResult, Result, Table, case
from sqlalchemy.dialects import postgresql, sqlite

Status = TypeVar("Status", bound=StrEnum)

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def new_ref() -> str:
    """An opaque, URL-safe, unguessable reference (128 random bits)."""
    return secrets.token_urlsafe(16)


def rank_of(column: Column[Any], ranks: Mapping[Status, int]) -> ColumnElement[int]:
    """The rank of the status stored in ``column``, computed by the database.

    Conditions on it go into the UPDATE's WHERE clause, so the check and the write are one atomic
    statement; an unknown stored value ranks lowest and can be corrected by any update.
    """
    return case({status.value: rank for status, rank in ranks.items()}, value=column, else_=-1)


def insert_for(backend: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on this backend (both dialects spell it alike)."""
    if backend == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def require_e164(number: str) -> str:
    """``number`` if it is an E.164 number (``+`` and 2-15 digits), else a ValueError."""
    if not _E164.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 number like +12025550123")
    return number


def one_key(**keys: str | None) -> tuple[str, str]:
    """The one keyword that was given, e.g. ``ref`` or ``sid``, and its value."""
    given = [(name, value) for name, value in keys.items() if value is not None]
    if len(given) != 1:
        names = " or ".join(keys)
        raise TypeError(f"pass exactly one of {names}")
    return given[0]


def rowcount(result: Result[Any]) -> int:
    """How many rows an INSERT or UPDATE matched (those statements return a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount
