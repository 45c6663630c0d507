"""``ivr asr transcribe``: run the offline recognizers on recordings (check a model on your own
audio, or see what a caller's recording was heard as)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ivr.speech.asr import Grammar, Recognition, recognizer_for
from ivr.speech.audio import read_wav


def _line(path: Path, recognition: Recognition, digits: bool, as_json: bool) -> str:
    if as_json:
        record: dict[str, object] = {"file": str(path), "text": recognition.text}
        record["digits" if digits else "intent"] = (
            recognition.digits if digits else recognition.intent
        )
        record["confidence"] = recognition.confidence
        record["engine"] = recognition.engine
        return json.dumps(record, ensure_ascii=False)
    meaning = recognition.digits if digits else recognition.intent
    return (
        f"{path}\t{recognition.text or '-'}\t{meaning or '(no match)'}\t"
        f"{recognition.confidence:.2f}\t{recognition.engine}"
    )


@click.group("asr")
def asr() -> None:
    """Offline speech recognition."""


@asr.command("transcribe")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--language", "-l", required=True, help="Language tag, e.g. en-US, ko-KR.")
@click.option("--digits", "digits", is_flag=True, help="Listen for spoken digits.")
@click.option("--phrases", help='Listen for these phrases, e.g. "yes,no,repeat".')
@click.option("--min-digits", type=click.IntRange(1, 32), default=1, show_default=True)
@click.option("--max-digits", type=click.IntRange(1, 32), default=16, show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def transcribe(
    files: tuple[Path, ...],
    language: str,
    digits: bool,
    phrases: str | None,
    min_digits: int,
    max_digits: int,
    min_confidence: float,
    as_json: bool,
) -> None:
    """Recognize FILES (WAV) against digits or a list of phrases; one line per file."""
    if digits == bool(phrases):
        raise click.UsageError("give exactly one of --digits or --phrases")
    if digits:
        if min_digits > max_digits:
            raise click.UsageError("--min-digits is above --max-digits")
        grammar = Grammar.for_digits(language, min_digits, max_digits, min_confidence)
    else:
        grammar = Grammar.for_phrases((phrases or "").split(","), language, min_confidence)
    recognizer = recognizer_for(language)
    if recognizer is None:
        raise click.ClickException(f"no speech recognizer for {language!r} (see `ivr models list`)")
    failed = False
    for path in files:
        try:
            pcm16, rate = read_wav(path)
            recognition = recognizer.recognize(pcm16, rate, grammar)
        except ValueError as err:
            click.echo(f"error: {err}", err=True)
            failed = True
            continue
        click.echo(_line(path, recognition, digits, as_json))
    if failed:
        raise SystemExit(1)


COMMANDS = (asr,)
