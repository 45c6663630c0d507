"""``ivr notify`` and ``ivr dnc`` on a real SQLite database, without a server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ivr.cli import main
from tests.conftest import DIALPLANS

ANNA = "+12025550142"
BORIS = "+12025550143"
REMINDER_VARS = ("--var", "name=Anna", "--var", "clinic=Sunrise", "--var", "when=2031-01-01T10:00")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "IVR_DATABASE_URL": f"sqlite:///{tmp_path}/var/ivr.db",
        "IVR_DIALPLANS": str(DIALPLANS),
        "IVR_AUDIO_DIR": str(tmp_path / "audio"),
        "IVR_VAR_DIR": str(tmp_path / "var"),
        "IVR_CONFIG": "",
    }


def ivr(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def listed(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = ivr(env, "notify", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_send_show_and_list(env: dict[str, str]) -> None:
    sent = ivr(
        env, "notify", "send", "--to", ANNA, "--plan", "appointment_reminder", *REMINDER_VARS,
        "--category", "marketing", "--idempotency-key", "visit-1",
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    notification_id, status, rest = sent.output.split(" ", 2)
    assert status == "scheduled"
    assert rest.startswith("(created; to +12025550142")

    again = ivr(
        env, "notify", "send", "--to", BORIS, "--plan", "appointment_reminder", *REMINDER_VARS,
        "--idempotency-key", "visit-1", "--json",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["id"] == notification_id

    shown = ivr(env, "notify", "show", notification_id)
    assert shown.exit_code == 0
    document = json.loads(shown.output)
    assert (document["id"], document["to"], document["category"]) == (
        notification_id,
        ANNA,
        "marketing",
    )
    assert [item["id"] for item in listed(env)] == [notification_id]
    assert [item["id"] for item in listed(env, "--status", "scheduled")] == [notification_id]
    assert listed(env, "--status", "done") == []
    table = ivr(env, "notify", "list")
    assert notification_id in table.output
    assert "appointment_reminder" in table.output

    unknown = ivr(env, "notify", "show", "nope")
    assert unknown.exit_code == 1
    assert "no notification 'nope'" in unknown.output
    # One id in 64 begins with "-"; it must not be taken for an option.
    dashed = ivr(env, "notify", "show", "-Xy_z")
    assert (dashed.exit_code, dashed.output) == (1, "Error: no notification '-Xy_z'\n")


def test_send_reports_field_errors_and_creates_nothing(env: dict[str, str]) -> None:
    result = ivr(
        env, "notify", "send", "--to", ANNA, "--plan", "appointment_reminder",
        "--var", "name=Anna", "--var", "when=someday", "--timezone", "Atlantis/Capital",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "timezone: unknown time zone 'Atlantis/Capital'" in result.output
    result = ivr(
        env, "notify", "send", "--to", ANNA, "--plan", "appointment_reminder",
        "--var", "name=Anna", "--var", "when=someday",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "variables.clinic: missing" in result.output
    assert "variables.when: expected an ISO 8601" in result.output
    bad_var = ivr(env, "notify", "send", "--to", ANNA, "--plan", "x", "--var", "novalue")
    assert bad_var.exit_code == 2
    assert "NAME=VALUE" in bad_var.output
    assert listed(env) == []


def test_import_keeps_good_rows_and_reports_bad_ones_by_row_number(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "reminders.csv"
    csv_file.write_text(
        "to,name,clinic,when,idempotency_key,category\n"
        f"{ANNA},Anna,Sunrise,2031-01-01T10:00,r-anna,\n"  # row 2
        "+1 555 0100,Nobody,Sunrise,2031-01-01T10:00,,\n"  # row 3: not a valid number
        "\n"  # row 4: blank, skipped
        f"{BORIS},Boris,Sunrise,the day after,,\n"  # row 5: bad time
        '+12025550144,"Clara, Jr",Sunrise,2031-01-02T09:00,r-clara,marketing\n'  # row 6
        "+12025550145,Dan\n",  # row 7: too few cells
        encoding="utf-8",
    )
    result = ivr(env, "notify", "import", str(csv_file), "--plan", "appointment_reminder")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "row 3: to: '+1 555 0100' is not a valid phone number",
        "row 5: variables.when: expected an ISO 8601 date and time, got 'the day after'",
        "row 7: row: 2 cells, but the header has 6 columns",
    ]
    assert lines[-1] == "5 rows: created 2, already existed 0, rejected 3"
    created = {item["to"]: item for item in listed(env)}
    assert set(created) == {ANNA, "+12025550144"}
    assert created["+12025550144"]["category"] == "marketing"
    assert created[ANNA]["category"] == "transactional"
    assert created[ANNA]["idempotency_key"] == "r-anna"

    # Importing the same file again creates nothing twice: the keyed rows already exist.
    again = ivr(env, "notify", "import", str(csv_file), "--plan", "appointment_reminder")
    assert again.exit_code == 1
    assert again.output.splitlines()[-1] == "5 rows: created 0, already existed 2, rejected 3"
    assert len(listed(env)) == 2


def test_import_of_only_good_rows_exits_0_with_the_category_option(
    env: dict[str, str], tmp_path: Path
) -> None:
    csv_file = tmp_path / "news.csv"
    csv_file.write_text(
        "\ufeffto,name,clinic,when,timezone\n"
        f"{ANNA},Anna,Sunrise,2031-01-01T10:00,Europe/Moscow\n"
        f"{BORIS},Boris,Sunrise,2031-01-01T10:00,\n",
        encoding="utf-8",
    )
    result = ivr(
        env, "notify", "import", str(csv_file), "--plan", "appointment_reminder",
        "--category", "news",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "2 rows: created 2, already existed 0, rejected 0\n"
    items = listed(env)
    assert [(i["to"], i["category"], i["timezone"]) for i in items] == [
        (ANNA, "news", "Europe/Moscow"),
        (BORIS, "news", None),
    ]


def test_import_in_batches_keeps_the_good_rows_of_a_batch_with_a_bad_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert listed(env) == []  # creates the database
    # A stand-in for a value PostgreSQL refuses (too long for its column), which rolls back
    # the whole INSERT of a batch: SQLite has no such limit, so a trigger refuses one number.
    with sqlite3.connect(tmp_path / "var" / "ivr.db") as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON notifications "
            "WHEN NEW.to_number = '+12025550154' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    numbers = [f"+120255501{n}" for n in range(50, 57)]
    csv_file = tmp_path / "batches.csv"
    csv_file.write_text(
        "to,name,clinic,when,idempotency_key\n"
        # The key has quotes: the keys to look up go into the SQL as literals.
        f'{numbers[0]},A,S,2031-01-01T10:00,"it\'s ""k0"""\n'  # row 2; batch: rows 2-4
        f"{numbers[1]},B,S,someday,\n"  # row 3: a bad time
        f"{numbers[2]},C,S,2031-01-01T10:00,\n"
        f"{numbers[3]},D,S,2031-01-01T10:00,\n"  # row 5; batch 2 is rows 5-7
        f"{numbers[4]},E,S,2031-01-01T10:00,\n"  # row 6: refused by the database
        f'{numbers[5]},F,S,2031-01-01T10:00,"it\'s ""k0"""\n'  # row 7: row 2's key
        f"{numbers[6]},G,S,2031-01-01T10:00,\n",  # row 8; batch 3
        encoding="utf-8",
    )
    result = ivr(
        env, "notify", "import", str(csv_file), "--plan", "appointment_reminder",
        "--batch-size", "3",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "row 3: variables.when: expected an ISO 8601 date and time, got 'someday'",
        "row 6: database: refused",
        "7 rows: created 4, already existed 1, rejected 2",
    ]
    # The good rows of both batches with a bad row are kept, listed in the file's order.
    assert [item["to"] for item in listed(env)] == [numbers[0], numbers[2], numbers[3], numbers[6]]
    assert listed(env)[0]["idempotency_key"] == 'it\'s "k0"'
    # Again: both rows with the key find it (rows without a key are new notifications).
    again = ivr(env, "notify", "import", str(csv_file), "--plan", "appointment_reminder")
    assert again.output.splitlines()[-1] == "7 rows: created 3, already existed 2, rejected 2"
    # As with `notify send`, a row whose key exists is that notification, checked no further.
    keyed = tmp_path / "keyed.csv"
    keyed.write_text(
        f'to,name,clinic,when,idempotency_key\n{ANNA},A,S,someday,"it\'s ""k0"""\n',
        encoding="utf-8",
    )
    result = ivr(env, "notify", "import", str(keyed), "--plan", "appointment_reminder")
    assert (result.exit_code, result.output) == (
        0,
        "1 rows: created 0, already existed 1, rejected 0\n",
    )


@pytest.mark.parametrize(
    ("header", "plan", "message"),
    [
        ("to,name,clinic,when,colour", "appointment_reminder", "unknown column(s) colour"),
        ("name,clinic,when", "appointment_reminder", "no column for to"),
        ("to,name", "appointment_reminder", "no column for clinic, when"),
        ("to,name,name,clinic,when", "appointment_reminder", "named twice: name"),
        ("to,name,clinic,when", "order_status_line", "no outbound plan 'order_status_line'"),
    ],
)
def test_import_refuses_a_header_that_cannot_work(
    env: dict[str, str], tmp_path: Path, header: str, plan: str, message: str
) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(f"{header}\n{ANNA},Anna,Sunrise,2031-01-01T10:00\n", encoding="utf-8")
    result = ivr(env, "notify", "import", str(csv_file), "--plan", plan)
    assert result.exit_code == 1
    assert message in result.output
    assert listed(env) == []


def test_do_not_call_add_list_remove(env: dict[str, str]) -> None:
    assert ivr(env, "dnc", "list").output == "the do-not-call list is empty\n"
    added = ivr(env, "dnc", "add", ANNA, "--reason", "asked on the phone")
    assert (added.exit_code, added.output) == (0, f"{ANNA} is on the do-not-call list\n")
    assert ivr(env, "dnc", "add", BORIS).exit_code == 0
    assert ivr(env, "dnc", "list").output == f"{ANNA}     asked on the phone\n{BORIS}\n"
    removed = ivr(env, "dnc", "remove", ANNA)
    assert removed.output == f"{ANNA} is off the do-not-call list\n"
    assert ivr(env, "dnc", "remove", ANNA).output == f"{ANNA} was not on the do-not-call list\n"
    assert ivr(env, "dnc", "list").output == f"{BORIS}\n"
    bad = ivr(env, "dnc", "add", "+1555")
    assert bad.exit_code == 2
    assert "not a valid phone number" in bad.output
