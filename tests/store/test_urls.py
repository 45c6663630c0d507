"""IVR_DATABASE_URL as users write it becomes an async-driver URL, or a clear error."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from ivr.store import DatabaseURLError, normalize_database_url


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("sqlite:///var/ivr.db", "sqlite+aiosqlite:///var/ivr.db"),
        ("sqlite:////srv/ivr/ivr.db", "sqlite+aiosqlite:////srv/ivr/ivr.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("  sqlite:///var/ivr.db\n", "sqlite+aiosqlite:///var/ivr.db"),
        ("sqlite+aiosqlite:///var/ivr.db", "sqlite+aiosqlite:///var/ivr.db"),
        ("postgresql://ivr@db.internal/ivr", "postgresql+asyncpg://ivr@db.internal/ivr"),
        ("postgres://ivr@db.internal:5433/ivr", "postgresql+asyncpg://ivr@db.internal:5433/ivr"),
        ("postgresql+asyncpg://ivr@db/ivr", "postgresql+asyncpg://ivr@db/ivr"),
        ("postgresql://ivr@db/ivr?sslmode=require", "postgresql+asyncpg://ivr@db/ivr?ssl=require"),
    ],
)
def test_plain_urls_get_the_async_driver(written: str, expected: str) -> None:
    assert normalize_database_url(written) == make_url(expected)


def test_password_survives_normalization() -> None:
    url = normalize_database_url("postgresql://ivr:s%40cret@db/ivr")
    assert url.password == "s@cret"


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("var/ivr.db", "cannot parse"),
        ("mysql://ivr@db/ivr", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://ivr@db/ivr", "driver 'psycopg2'"),
        ("sqlite+pysqlite:///var/ivr.db", "driver 'pysqlite'"),
        ("sqlite://var/ivr.db", "three slashes"),
        ("postgresql://ivr@db", "names no database"),
        ("postgresql://ivr@db:port/ivr", "cannot parse"),
    ],
)
def test_bad_urls_name_the_setting_and_the_problem(written: str, complaint: str) -> None:
    with pytest.raises(DatabaseURLError) as caught:
        normalize_database_url(written)
    message = str(caught.value)
    assert message.startswith("IVR_DATABASE_URL: ")
    assert complaint in message


def test_errors_do_not_print_the_password() -> None:
    with pytest.raises(DatabaseURLError) as caught:
        normalize_database_url("mysql://ivr:hunter2@db/ivr")
    assert "hunter2" not in str(caught.value)
