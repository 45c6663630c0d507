"""``ivr simulate --server``: scenarios as phone calls through the real server.

The command starts the server and the simulated network itself; these tests run it with
click's CliRunner and read its JSON: the server's own record of the call (turns it played
over a Media Stream, the barge-ins its event log holds, what it understood, the outcome in
its database) and the caller's side of the line (the simulator's transcript).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ivr.cli import main
from ivr.simulation.voice import read_telephone_audio
from tests.conftest import DIALPLANS, FSDD, SCENARIOS

# The menu answered by voice while it plays (espeak-ng caller voice), the order number
# spoken by a real voice (FSDD digits, written next to the scenario), then "goodbye".
SPOKEN_MENU = """
plan: order_status_line
name: answers the menu while it plays, says the order number
caller: "+12025550142"
lookups:
  - {status: ok, data: {status: out for delivery}}
turns:
  - say: order
    barge_in_ms: 2500
  - expect: Please say or type your order number
    audio: order_4207.wav
  - expect: Order four two zero seven is out for delivery
    say: goodbye
expect: {outcome: status_told, end: hangup}
"""


def write_fsdd_number(path: Path, digits: str) -> None:
    """Jackson's take 1 of each digit, 150 ms apart: PocketSphinx hears 4-2-0-7 in it with a
    high confidence (tests/web/test_media_streams.py), so the number is not read back."""
    gap = b"\x00\x00" * 1200
    pcm = gap.join(read_telephone_audio(FSDD / f"{d}_jackson_1.wav") for d in digits)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm)


def simulate(*args: str) -> tuple[int, Any]:
    env = {"IVR_DIALPLANS": str(DIALPLANS), "IVR_CONFIG": ""}
    result = CliRunner().invoke(main, ["simulate", *args], env=env, catch_exceptions=False)
    return result.exit_code, json.loads(result.output[result.output.index("{") :])


def kinds(doc: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in doc["transcript"]]


@pytest.mark.slow
@pytest.mark.timeout(300)  # real-time calls through a real server
def test_a_spoken_answer_cuts_the_menu_over_a_media_stream(tmp_path: Path) -> None:
    script = tmp_path / "spoken_menu.yaml"
    script.write_text(SPOKEN_MENU)
    write_fsdd_number(tmp_path / "order_4207.wav", "4207")
    code, doc = simulate("order_status_line", "--server", "--script", str(script), "--json")
    assert code == 0, doc
    assert doc["passed"], doc["failures"]
    assert doc["media"] == "stream"
    # The server's event log: every turn was played over the stream, the menu cut by speech.
    assert doc["streamed_turns"] >= 3
    assert doc["barge_ins"] == ["speech"]
    order, number = doc["understood"][:2]
    assert order["intent"] == "order"
    assert (number["heard"], number["digits"]) == ("four two zero seven", "4207")
    assert doc["outcome"] == "status_told"
    # The caller's side: a WebSocket, the menu heard only in part, no <Record> anywhere.
    assert "audio" in kinds(doc)
    assert "stream" in kinds(doc)
    assert "record" not in kinds(doc)
    heard = [e["text"] for e in doc["transcript"] if e["kind"] == "heard"]
    assert "cut by clear" in heard[0]


@pytest.mark.slow
@pytest.mark.timeout(300)  # real-time calls through a real server
def test_the_same_scenario_over_record_does_not_stream() -> None:
    code, doc = simulate(
        "order_status_line", "--server", "--media", "record",
        "--script", str(SCENARIOS / "order_status_by_keys.yaml"), "--json",
    )  # fmt: skip
    assert code == 0, doc
    assert doc["passed"], doc["failures"]
    assert doc["streamed_turns"] == 0
    assert "stream" not in kinds(doc)
    assert doc["outcome"] == "status_told"


@pytest.mark.slow
@pytest.mark.timeout(300)  # real-time calls through a real server
def test_a_failing_scenario_fails_the_command(tmp_path: Path) -> None:
    script = tmp_path / "wrong.yaml"
    text = (SCENARIOS / "order_status_operator.yaml").read_text()
    script.write_text(text.replace('transfer: "+12025550123"', 'transfer: "+19995550000"'))
    code, doc = simulate("order_status_line", "--media", "stream", "--script", str(script),
                         "--json")  # fmt: skip
    assert code == 1
    assert doc["streamed_turns"] >= 1
    assert any("+19995550000" in failure for failure in doc["failures"]), doc["failures"]
