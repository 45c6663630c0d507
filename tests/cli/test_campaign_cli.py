"""``ivr campaign`` on a real SQLite database, without a server."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ivr.cli import main
from tests.conftest import DIALPLANS

HEADER = "to,name,clinic,when\n"
GOOD = HEADER + (
    "+12025550142,Anna,Sunrise Clinic,2031-01-01T10:00\n"
    "+12025550143,[bold]Boris[/bold],Sunrise Clinic,2031-01-01T11:00\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "IVR_DATABASE_URL": f"sqlite:///{tmp_path}/var/ivr.db",
        "IVR_DIALPLANS": str(DIALPLANS),
        "IVR_AUDIO_DIR": str(tmp_path / "audio"),
        "IVR_VAR_DIR": str(tmp_path / "var"),
        "IVR_CONFIG": "",
        "COLUMNS": "200",
    }


def ivr(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def create(env: dict[str, str], tmp_path: Path, text: str, *extra: str) -> Result:
    file = tmp_path / "rows.csv"
    file.write_text(text, encoding="utf-8")
    return ivr(
        env, "campaign", "create", str(file), "--name", "January", "--plan",
        "appointment_reminder", *extra,
    )  # fmt: skip


def test_create_list_show_pause_resume_cancel_export(env: dict[str, str], tmp_path: Path) -> None:
    created = create(env, tmp_path, GOOD, "--window", "09:00-17:00", "--json")
    assert created.exit_code == 0, created.output
    view: dict[str, Any] = json.loads(created.output)
    campaign_id = view["id"]
    assert (view["state"], view["window"], view["progress"]["total"]) == (
        "active", "09:00-17:00", 2,
    )  # fmt: skip

    listed = ivr(env, "campaign", "list")
    assert listed.exit_code == 0, listed.output
    assert campaign_id in listed.output
    assert "January" in listed.output
    assert "0/2" in listed.output

    shown = ivr(env, "campaign", "show", campaign_id)
    assert shown.exit_code == 0, shown.output
    assert "scheduled 2" in shown.output
    assert "09:00-17:00" in shown.output

    assert "paused" in ivr(env, "campaign", "pause", campaign_id).output
    assert "active" in ivr(env, "campaign", "resume", campaign_id).output
    cancelled = ivr(env, "campaign", "cancel", campaign_id)
    assert "cancelled: cancelled 2" in cancelled.output
    refused = ivr(env, "campaign", "resume", campaign_id)
    assert refused.exit_code == 1
    assert "cancelled" in refused.output

    out = tmp_path / "results.csv"
    assert ivr(env, "campaign", "export", campaign_id, "-o", str(out)).exit_code == 0
    header, *rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert header[:5] == ["id", "to", "status", "outcome", "attempts"]
    assert [(r[1], r[2]) for r in rows] == [
        ("'+12025550142", "cancelled"), ("'+12025550143", "cancelled"),
    ]  # fmt: skip
    printed = ivr(env, "campaign", "export", campaign_id)
    assert list(csv.reader(io.StringIO(printed.output))) == [header, *rows]


def test_markup_in_a_name_is_printed_as_text(env: dict[str, str], tmp_path: Path) -> None:
    file = tmp_path / "rows.csv"
    file.write_text(GOOD, encoding="utf-8")
    result = ivr(
        env, "campaign", "create", str(file), "--name", "[red]Jan[/red]", "--plan",
        "appointment_reminder",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[red]Jan[/red]" in ivr(env, "campaign", "list").output


def test_row_errors_exit_1_and_create_nothing(env: dict[str, str], tmp_path: Path) -> None:
    bad = GOOD + "=cmd|' /C calc'!A0,Eve,Clinic,2031-01-01T10:00\n+12025550144,Zoe,Clinic,soon\n"
    result = create(env, tmp_path, bad)
    assert result.exit_code == 1
    assert "row 4, to:" in result.output
    assert "row 5, when:" in result.output
    assert "nothing was created" in result.output
    assert ivr(env, "campaign", "list", "--json").output == ""


def test_campaign_wide_errors(env: dict[str, str], tmp_path: Path) -> None:
    result = create(env, tmp_path, GOOD, "--window", "9 to 5")
    assert result.exit_code == 1
    assert "--window: bad calling window" in result.output
    assert ivr(env, "campaign", "show", "nope").exit_code == 1
    assert ivr(env, "campaign", "pause", "nope").exit_code == 1


def test_idempotency(env: dict[str, str], tmp_path: Path) -> None:
    first = create(env, tmp_path, GOOD, "--idempotency-key", "jan", "--json")
    again = create(env, tmp_path, GOOD, "--idempotency-key", "jan", "--json")
    assert json.loads(first.output)["id"] == json.loads(again.output)["id"]
    other = create(env, tmp_path, HEADER + "+12025550149,X,Y,2031-01-01T10:00\n",
                   "--idempotency-key", "jan")  # fmt: skip
    assert other.exit_code == 1
    assert "different request" in other.output
