"""``ivr asr evaluate``: an operator's labelled recordings, truth from file names or a CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.asr import asr
from ivr.speech.evaluate import LabelError, TradeOff, labels_from_csv, labels_from_names

FSDD = Path("../shared/data/fsdd")
MORE = Path("../shared/data/fsdd_more")


def _recordings(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in names:
        source = FSDD / name if (FSDD / name).exists() else MORE / name
        shutil.copy(source, folder / name)
    return folder


@pytest.mark.slow
def test_evaluate_fsdd_names_prints_accuracy_and_tradeoff(tmp_path: Path) -> None:
    folder = _recordings(
        tmp_path, ["4_jackson_0.wav", "1_jackson_0.wav", "7_theo_45.wav", "0_yweweler_46.wav"]
    )
    result = CliRunner().invoke(
        asr, ["evaluate", str(folder), "-l", "en-US", "--digits", "--max-digits", "1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "grammar: en-US digits 1; engine: pocketsphinx:en-us"
    assert lines[1].startswith("recordings: 4; understood at min_confidence 0: 100.0% right")
    assert "| min_confidence | right | wrong | rejected |" in lines
    assert "| 0.00 | 4 (100.0%) | 0 (0.0%) | 0 (0.0%) |" in lines
    assert any(line.startswith("suggested min_confidence: 0.0") for line in lines)


@pytest.mark.slow
def test_evaluate_csv_counts_wrong_answers_and_negatives(tmp_path: Path) -> None:
    folder = _recordings(tmp_path, ["4_jackson_0.wav", "1_jackson_0.wav"])
    labels = tmp_path / "labels.csv"
    # One label is deliberately false (4 said, 5 claimed) and one recording must not be
    # understood at all: both count as wrong when accepted.
    labels.write_text("file,truth\n4_jackson_0.wav,5\n1_jackson_0.wav,\n", encoding="utf-8")
    result = CliRunner().invoke(
        asr,
        ["evaluate", str(folder), "-l", "en", "--digits", "--max-digits", "1",
         "--labels", str(labels), "--max-wrong", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| 0.00 | 0 (0.0%) | 2 (100.0%) | 0 (0.0%) |" in result.output
    assert "4_jackson_0.wav: said 5, heard 4" in result.output
    assert "1_jackson_0.wav: said (nothing to understand), heard 1" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("../outside.wav,4\n", "labels.csv:1: '../outside.wav' is not a file inside"),
        ("/etc/passwd,4\n", "labels.csv:1: '/etc/passwd' is not a file inside"),
        ("file,truth\nmissing.wav,4\n", "labels.csv:2: no such recording 'missing.wav'"),
        ("a.wav,4,extra\n", "labels.csv:1: expected 2 columns (file,truth), got 3"),
        ("a.wav,four\n", "labels.csv:1: truth 'four' is not digits"),
        ("file,truth\n\n", "labels.csv: no rows"),
        (",4\n", "labels.csv:1: '' is not a file inside"),
    ],
)
def test_hostile_label_csv_is_refused_with_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "outside.wav").write_bytes(b"RIFF")
    labels = tmp_path / "labels.csv"
    labels.write_text(content, encoding="utf-8")
    with pytest.raises(LabelError) as caught:
        labels_from_csv(labels, folder, digits=True)
    assert message in str(caught.value)


def test_label_csv_not_utf8_and_names_without_digits(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_bytes(b"\xff\xfe\x00a.wav,4\n")
    with pytest.raises(LabelError, match=r"labels\.csv: not UTF-8"):
        labels_from_csv(labels, tmp_path, digits=True)
    (tmp_path / "seven_anna.wav").write_bytes(b"RIFF")
    with pytest.raises(LabelError, match="should start with the digits said"):
        labels_from_names(tmp_path, digits=True)
    found = labels_from_names(tmp_path, digits=False)
    assert [(f.path.name, f.truth) for f in found] == [("seven_anna.wav", "seven")]


def test_evaluate_cli_reports_a_bad_csv_without_decoding(tmp_path: Path) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("../../x.wav,1\n", encoding="utf-8")
    result = CliRunner().invoke(
        asr, ["evaluate", str(folder), "-l", "en", "--digits", "--labels", str(labels)]
    )
    assert result.exit_code == 1
    assert "labels.csv:1: '../../x.wav' is not a file inside" in result.output


def test_tradeoff_counts_right_wrong_rejected() -> None:
    table = TradeOff()
    table.add("4", "4", 0.9)  # right
    table.add("4", "5", 0.6)  # wrong
    table.add(None, "1", 0.3)  # must not be understood
    table.add("7", None, 0.8)  # not understood
    assert table.at(0.0) == (1, 2, 1)
    assert table.at(0.5) == (1, 1, 2)
    assert table.at(0.95) == (0, 0, 4)
