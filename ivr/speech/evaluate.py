"""Measure a recognizer on an operator's own labelled recordings (``ivr asr evaluate``).

The truth of each recording comes from its file name (FSDD's ``{digits}_{speaker}_{take}.wav``:
the part before the first ``_``) or from a CSV of ``file,truth`` rows. What comes out is how
many answers were right, wrong or turned away at each ``min_confidence``: the threshold a
deployment sets is then chosen on its own callers' voices, not on ours.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.dialplan.intents import words_of

AUDIO_SUFFIXES = (".wav",)
_MAX_CSV_ROWS = 100_000


class LabelError(ValueError):
    """A label file or a file name that does not say what was said (file:line in the text)."""


@dataclass(frozen=True)
class Labelled:
    path: Path
    truth: str | None  # None: speech that must not be understood (an empty truth in the CSV)


def labels_from_names(folder: Path, digits: bool) -> list[Labelled]:
    """Every WAV file in ``folder``, its truth the file name up to the first ``_`` (digits:
    ``4207_anna_1.wav``; phrases: ``yes_anna_1.wav``, ``-`` between words of a phrase)."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        truth = path.stem.split("_", 1)[0].replace("-", " ")
        if digits and not truth.isdigit():
            raise LabelError(f"{path}: the name should start with the digits said, e.g. 42_x.wav")
        found.append(Labelled(path, truth))
    if not found:
        raise LabelError(f"{folder}: no .wav recordings")
    return found


def labels_from_csv(csv_path: Path, folder: Path, digits: bool) -> list[Labelled]:
    """Rows ``file,truth`` (a header row ``file,truth`` is allowed); ``file`` relative to
    ``folder``, inside it; an empty truth marks speech that must not be understood."""
    found: list[Labelled] = []
    root = folder.resolve()
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelError(f"{csv_path}: not UTF-8 text ({err.reason})") from None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        where = f"{csv_path}:{number}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["file", "truth"]:
            continue
        if len(row) != 2:
            raise LabelError(f"{where}: expected 2 columns (file,truth), got {len(row)}")
        if len(found) >= _MAX_CSV_ROWS:
            raise LabelError(f"{where}: more than {_MAX_CSV_ROWS} rows")
        name, truth = row[0].strip(), row[1].strip()
        path = (folder / name).resolve()
        if not name or not path.is_relative_to(root):
            raise LabelError(f"{where}: {name!r} is not a file inside {folder}")
        if not path.is_file():
            raise LabelError(f"{where}: no such recording {name!r}")
        if digits and truth and not truth.isdigit():
            raise LabelError(f"{where}: truth {truth!r} is not digits")
        found.append(Labelled(path, truth or None))
    if not found:
        raise LabelError(f"{csv_path}: no rows")
    return found


def same_phrase(heard: str | None, truth: str | None) -> bool:
    if heard is None or truth is None:
        return False
    return words_of(heard) == words_of(truth)


@dataclass
class TradeOff:
    """Answers with their confidences: right / wrong / rejected at any threshold."""

    answers: list[tuple[bool | None, float]] = field(default_factory=list)

    def add(self, truth: str | None, heard: str | None, confidence: float) -> None:
        """``heard``: the answer (digits or phrase) or None when nothing was understood."""
        if heard is None:
            self.answers.append((None, confidence))
        else:
            self.answers.append((truth is not None and heard == truth, confidence))

    @property
    def total(self) -> int:
        return len(self.answers)

    def at(self, threshold: float) -> tuple[int, int, int]:
        """(right and accepted, wrong and accepted, rejected) at ``threshold``."""
        right = sum(1 for ok, c in self.answers if ok is True and c >= threshold)
        wrong = sum(1 for ok, c in self.answers if ok is False and c >= threshold)
        return right, wrong, self.total - right - wrong

    def pct(self, count: int) -> str:
        return f"{100.0 * count / max(1, self.total):.1f}%"

    def line(self, threshold: float) -> str:
        right, wrong, rejected = self.at(threshold)
        return f"{self.total} | {self.pct(right)} | {self.pct(wrong)} | {self.pct(rejected)}"


def render_tradeoff(table: TradeOff, thresholds: Sequence[float]) -> str:
    lines = ["| min_confidence | right | wrong | rejected |", "|---|---|---|---|"]
    for threshold in thresholds:
        right, wrong, rejected = table.at(threshold)
        lines.append(
            f"| {threshold:.2f} | {right} ({table.pct(right)}) | {wrong} ({table.pct(wrong)}) "
            f"| {rejected} ({table.pct(rejected)}) |"
        )
    return "\n".join(lines)
