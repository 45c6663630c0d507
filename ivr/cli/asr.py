"""``ivr asr transcribe`` and ``ivr asr evaluate``: run the offline recognizers on recordings
(check a model on your own audio, see what a caller's recording was heard as, and choose
``min_confidence`` on your own callers' labelled recordings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ivr.dialplan.intents import words_of
from ivr.dialplan.loader import load_plan
from ivr.speech.asr import Grammar, Recognition, Recognizer, recognize_many, recognizer_for
from ivr.speech.audio import read_wav
from ivr.speech.evaluate import (
    LabelError,
    TradeOff,
    labels_from_csv,
    labels_from_names,
    render_tradeoff,
)

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _line(path: Path, recognition: Recognition, digits: bool, as_json: bool, grammar: str) -> str:
    if as_json:
        record: dict[str, object] = {"file": str(path), "text": recognition.text}
        record["digits" if digits else "intent"] = (
            recognition.digits if digits else recognition.intent
        )
        record["confidence"] = recognition.confidence
        record["engine"] = recognition.engine
        record["grammar"] = grammar
        return json.dumps(record, ensure_ascii=False)
    meaning = recognition.digits if digits else recognition.intent
    return (
        f"{path}\t{recognition.text or '-'}\t{meaning or '(no match)'}\t"
        f"{recognition.confidence:.2f}\t{recognition.engine}"
    )


def grammar_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say what may be said (shared by transcribe and evaluate)."""
    options = [
        click.option("--language", "-l", help="Language tag, e.g. en-US, ko-KR."),
        click.option("--digits", "digits", is_flag=True, help="Listen for spoken digits."),
        click.option("--phrases", help='Listen for these phrases, e.g. "yes,no,repeat".'),
        click.option("--min-digits", type=click.IntRange(1, 32), default=1, show_default=True),
        click.option("--max-digits", type=click.IntRange(1, 32), default=16, show_default=True),
        click.option(
            "--plan",
            "plan_path",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Take the grammar from a dial plan's listen state "
            "(with --state): exactly the digits or phrases that state allows.",
        ),
        click.option("--state", help="The listening state of --plan."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_grammar(
    language: str | None,
    digits: bool,
    phrases: str | None,
    min_digits: int,
    max_digits: int,
    min_confidence: float | None,
    plan_path: Path | None,
    state: str | None,
) -> Grammar:
    if plan_path is not None:
        return _plan_grammar(plan_path, state, language, digits or bool(phrases), min_confidence)
    if state is not None:
        raise click.UsageError("--state needs --plan")
    if language is None:
        raise click.UsageError("give --language (or --plan and --state)")
    if digits == bool(phrases):
        raise click.UsageError("give exactly one of --digits or --phrases")
    threshold = 0.5 if min_confidence is None else min_confidence
    if digits:
        if min_digits > max_digits:
            raise click.UsageError("--min-digits is above --max-digits")
        return Grammar.for_digits(language, min_digits, max_digits, threshold)
    try:
        return Grammar.for_phrases((phrases or "").split(","), language, threshold)
    except ValueError as err:
        raise click.UsageError(str(err)) from None


def _plan_grammar(
    path: Path, state: str | None, language: str | None, other: bool, threshold: float | None
) -> Grammar:
    if other:
        raise click.UsageError("--plan takes the grammar from the plan: no --digits/--phrases")
    if state is None:
        raise click.UsageError("--plan needs --state (a state that listens)")
    plan, errors = load_plan(path)
    if plan is None:
        raise click.ClickException(
            "\n".join(f"{e.file}:{e.line}: {e.message}" for e in errors) or f"{path}: not a plan"
        )
    found = plan.states.get(state)
    if found is None or found.listen is None:
        listening = ", ".join(n for n, s in plan.states.items() if s.listen) or "none"
        raise click.UsageError(f"{path}: no listening state {state!r} (listening: {listening})")
    grammar = Grammar.from_listen(found.listen, language or plan.language)
    if threshold is not None:
        grammar = Grammar(grammar.language, grammar.intents, grammar.digits, threshold)
    return grammar


def _recognizer(language: str) -> Recognizer:
    recognizer = recognizer_for(language)
    if recognizer is None:
        raise click.ClickException(f"no speech recognizer for {language!r} (see `ivr models list`)")
    return recognizer


@click.group("asr")
def asr() -> None:
    """Offline speech recognition."""


@asr.command("transcribe")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@grammar_options
@click.option("--min-confidence", type=click.FloatRange(0, 1), help="Default 0.5 (or the plan's).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def transcribe(
    files: tuple[Path, ...], min_confidence: float | None, as_json: bool, **grammar_spec: Any
) -> None:
    """Recognize FILES (WAV) against digits or a list of phrases; one line per file (the
    grammar used goes to stderr, and into each JSON object)."""
    grammar = build_grammar(min_confidence=min_confidence, **grammar_spec)
    recognizer = _recognizer(grammar.language)
    click.echo(f"grammar: {grammar.describe()}", err=True)
    failed = False
    for path in files:
        try:
            pcm16, rate = read_wav(path)
            recognition = recognizer.recognize(pcm16, rate, grammar)
        except ValueError as err:
            click.echo(f"error: {err}", err=True)
            failed = True
            continue
        click.echo(
            _line(path, recognition, grammar.digits is not None, as_json, grammar.describe())
        )
    if failed:
        raise SystemExit(1)


@asr.command("evaluate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@grammar_options
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of file,truth rows (files relative to FOLDER); default: the truth is "
    "the file name up to the first '_' (7_anna_3.wav).",
)
@click.option(
    "--max-wrong",
    type=click.FloatRange(0, 100),
    default=3.0,
    show_default=True,
    help="Suggest the lowest min_confidence accepting at most this % wrong answers.",
)
@click.option("--workers", type=click.IntRange(1, 64), help="Decoders at once (default: cores).")
def evaluate(
    folder: Path, labels: Path | None, max_wrong: float, workers: int | None, **grammar_spec: Any
) -> None:
    """Measure recognition on labelled recordings in FOLDER: accuracy, rejections and the
    right / wrong / rejected trade-off at each min_confidence."""
    grammar = build_grammar(min_confidence=0.0, **grammar_spec)
    digits = grammar.digits is not None
    try:
        items = (
            labels_from_csv(labels, folder, digits) if labels else labels_from_names(folder, digits)
        )
        audio = [read_wav(item.path) for item in items]
    except (LabelError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    recognizer = _recognizer(grammar.language)
    click.echo(f"grammar: {grammar.describe().rsplit(',', 1)[0]}; engine: {recognizer.name}")
    table, wrong = TradeOff(), []
    for item, recognition in zip(
        items, recognize_many(recognizer, audio, grammar, workers), strict=True
    ):
        heard = _answer(recognition, digits)
        truth = item.truth if digits or item.truth is None else " ".join(words_of(item.truth))
        table.add(truth, heard, recognition.confidence)
        if heard is not None and heard != truth:
            wrong.append(
                f"  {item.path.name}: said {truth or '(nothing to understand)'}, heard "
                f"{heard} ({recognition.confidence:.2f})"
            )
    _report(table, wrong, max_wrong)


def _answer(recognition: Recognition, digits: bool) -> str | None:
    if digits:
        return recognition.digits
    return " ".join(words_of(recognition.intent)) if recognition.intent else None


def _report(table: TradeOff, wrong: list[str], max_wrong: float) -> None:
    right, wrong_count, rejected = table.at(0.0)
    click.echo(
        f"recordings: {table.total}; understood at min_confidence 0: {table.pct(right)} "
        f"right, {table.pct(wrong_count)} wrong, {table.pct(rejected)} not understood"
    )
    click.echo(render_tradeoff(table, THRESHOLDS))
    fitting = [t for t in THRESHOLDS if 100.0 * table.at(t)[1] / max(1, table.total) <= max_wrong]
    if fitting:
        best = fitting[0]
        click.echo(
            f"suggested min_confidence: {best:.1f} (the lowest with at most "
            f"{max_wrong:g}% wrong: {table.pct(table.at(best)[0])} right)"
        )
    else:
        click.echo(f"no min_confidence keeps wrong answers at or below {max_wrong:g}%")
    if wrong:
        click.echo("wrong answers:")
        for line in wrong[:20]:
            click.echo(line)
        if len(wrong) > 20:
            click.echo(f"  ... and {len(wrong) - 20} more")


COMMANDS = (asr,)
