"""``ivr demo`` (what ``make demo`` runs) works on this machine and ends as it says.

Its appointment is tomorrow in each person's zone, whenever it runs: a fixed date would pass
(it did: "Tuesday, November 24" was reminded of in December).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr import demo
from ivr.dialplan.templating import render
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        ("Europe/Berlin", datetime(2020, 3, 1, 12, tzinfo=UTC), "2020-03-02T10:00"),
        # 23:30 UTC is already the next day in Seoul and still the same day in Honolulu.
        ("Asia/Seoul", datetime(2031, 12, 31, 23, 30, tzinfo=UTC), "2032-01-02T10:00"),
        ("Pacific/Honolulu", datetime(2031, 12, 31, 23, 30, tzinfo=UTC), "2032-01-01T10:00"),
    ],
)
def test_the_appointment_is_tomorrow_in_the_persons_zone(
    zone: str, now: datetime, expected: str
) -> None:
    assert demo.appointment(zone, now) == expected


def test_the_appointment_is_never_in_the_past_nor_written_into_the_demo() -> None:
    now = datetime.now(UTC)
    for zone in demo.CITIES:
        when = datetime.fromisoformat(demo.appointment(zone, now)).replace(tzinfo=ZoneInfo(zone))
        assert now < when < now + timedelta(days=2), zone
    source = (ROOT / "ivr" / "demo.py").read_text()
    assert not re.search(r"\d{4}-\d{2}-\d{2}", source), "a fixed date in ivr/demo.py"


def run_demo(*options: str) -> str:
    process = subprocess.run(
        [sys.executable, "-m", "ivr", "demo", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stdout + process.stderr
    return " ".join(process.stdout.split())


@pytest.mark.slow
@pytest.mark.timeout(300)  # streamed calls take the real time their prompts take to say
def test_demo_campaign_runs_end_to_end_over_media_streams() -> None:
    before = datetime.now(UTC)
    out = run_demo()  # --media stream is the default
    after = datetime.now(UTC)
    assert "Outcomes as expected" in out
    assert "callers heard live over Media Streams" in out
    # From the server's event log: the answered calls were played over the WebSocket
    # (Dan's machine gets the voicemail text, no stream), and Ann's answer cut her prompt.
    assert (
        "Media Streams: 3 answered calls went over the WebSocket /twilio/stream (Ann, Ben, Eve)"
        in out
    )
    assert "CALLER 'confirm' -> confirm" in out
    assert "<- barge-in (speech): said while the robot spoke" in out
    assert "Eve's later marketing call: skipped" in out
    assert "Hi Cat, Sunrise Clinic reminds you" in out  # the SMS after no answer
    assert "CALLER 'confirm' -> confirm" in out  # recognized offline
    # Cat's SMS names tomorrow in her (daytime) zone; midnight may pass there during the run.
    day = re.search(r"Day: ([\w/]+);", out)
    assert day is not None, out
    dates = {
        render("{{ when | date }}", {"when": demo.appointment(day[1], moment)}, "en-US")[0]
        for moment in (before, after)
    }
    assert any(f"reminds you of your visit on {date} at 10:00 AM" in out for date in dates), (
        dates,
        out,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_campaign_over_record() -> None:
    out = run_demo("--media", "record")
    assert "Outcomes as expected" in out
    assert "callers heard with <Gather>/<Record>" in out
    assert "Media Streams:" not in out
    assert "barge-in" not in out  # Ann answers after her prompt: <Record> hears nothing sooner
    assert "CALLER 'confirm' -> confirm" in out
