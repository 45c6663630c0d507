"""``ivr db upgrade`` and ``ivr db current``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from ivr.cli.db import COMMANDS, db
from ivr.store.migrate import head_revision
from tests.store.postgres import PostgresServer, postgres_url_with_closed_port


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(db, list(args), env=env)
    return result.exit_code, result.output


HEAD = head_revision()


def test_db_group_is_exported() -> None:
    assert (db,) == COMMANDS
    assert set(db.commands) == {"upgrade", "current"}


def test_upgrade_then_current_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'ivr.db'}"
    env = {"IVR_DATABASE_URL": url}
    assert _invoke("current", env=env) == (
        0,
        f"sqlite+aiosqlite:///{tmp_path}/var/ivr.db: no migrations applied; run `ivr db upgrade`\n",
    )
    code, output = _invoke("upgrade", env=env)
    assert (code, output) == (
        0,
        f"sqlite+aiosqlite:///{tmp_path}/var/ivr.db: at revision {HEAD} (head)\n",
    )
    code, output = _invoke("current", "--database-url", url)
    assert code == 0
    assert output.endswith(f"at revision {HEAD} (head)\n")


def test_upgrade_on_postgresql(postgres_server: PostgresServer) -> None:
    url: URL = postgres_server.create_database()
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    code, output = _invoke("upgrade", "--database-url", plain)
    assert (code, output.endswith(f"at revision {HEAD} (head)\n")) == (0, True)
    assert _invoke("current", "--database-url", plain)[1] == output


def test_a_bad_url_names_the_setting() -> None:
    code, output = _invoke("upgrade", env={"IVR_DATABASE_URL": "mysql://ivr@db/ivr"})
    assert code == 1
    assert "Error: IVR_DATABASE_URL: unsupported database 'mysql'" in output


def test_an_unreachable_server_is_an_error_not_a_traceback() -> None:
    url = postgres_url_with_closed_port().render_as_string(hide_password=False)
    code, output = _invoke("current", "--database-url", url)
    assert code == 1
    assert output.startswith("Error: postgresql+asyncpg://")
    assert "127.0.0.1:9" in output


def test_unreachable_postgresql_fails_the_tests_with_a_message() -> None:
    server = PostgresServer(postgres_url_with_closed_port().render_as_string(hide_password=False))
    with pytest.raises(
        pytest.fail.Exception, match=r"PostgreSQL server at 127\.0\.0\.1:9 is not reachable"
    ):
        server.require_reachable()
