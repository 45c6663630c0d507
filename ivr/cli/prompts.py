"""``ivr prompts``: render dial-plan prompts into the cache, or one text into a file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ivr.cli.common import audio_dir, dialplans_dir, resolve_plan
from ivr.dialplan.loader import load_plans
from ivr.dialplan.schema import Plan
from ivr.speech.audio import AudioFormat
from ivr.speech.prompts import BuildResult, default_cache
from ivr.speech.tts import TtsError, default_service

_FORMATS = click.Choice([f.value for f in AudioFormat])


@click.group()
def prompts() -> None:
    """Synthesized prompts (espeak-ng through pyttsx3, cached under audio/cache/)."""


def _plans(names: tuple[str, ...]) -> list[Plan]:
    if names:
        return [resolve_plan(name) for name in names]
    plan_set, errors = load_plans([dialplans_dir()], audio_dir())
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        raise click.ClickException("fix the dial plans above first (`ivr validate`)")
    return [plan_set.plans[name] for name in sorted(plan_set.plans)]


@prompts.command()
@click.argument("plans", nargs=-1)
@click.option(
    "--format",
    "formats",
    type=_FORMATS,
    multiple=True,
    help="Audio format(s) to render (repeatable; default mulaw, what a provider plays).",
)
def build(plans: tuple[str, ...], formats: tuple[str, ...]) -> None:
    """Render every static prompt of PLANS (ids or files; default: all under dialplans/).

    Prompts with template variables are rendered per call, on first use.
    """
    chosen = tuple(AudioFormat(f) for f in formats) or (AudioFormat.MULAW,)
    cache = default_cache()
    total = BuildResult()
    try:
        for plan in _plans(plans):
            result = cache.build_static_prompts(plan, chosen)
            total += result
            click.echo(
                f"{plan.id}: {result.rendered} rendered, {result.cached} already cached "
                f"({plan.language})"
            )
    except (TtsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"total: {total.rendered} rendered, {total.cached} already cached in {cache.directory}/"
    )


@prompts.command()
@click.argument("text")
@click.option("--language", "-l", default="en-US", show_default=True, help="BCP 47 tag.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="WAV file to write.",
)
@click.option("--format", "fmt", type=_FORMATS, default=AudioFormat.MULAW.value, show_default=True)
@click.option("--rate", type=int, default=None, help="Words per minute (default 160).")
@click.option("--variant", default=None, help="espeak-ng voice variant, e.g. f3 or m3.")
def say(
    text: str, language: str, output: Path, fmt: str, rate: int | None, variant: str | None
) -> None:
    """Synthesize TEXT into a WAV file (not cached)."""
    try:
        audio = default_service().render_sync(text, language, AudioFormat(fmt), rate, variant)
    except (TtsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_bytes(audio)
    click.echo(f"wrote {output} ({len(audio)} bytes, {fmt})", file=sys.stderr)


COMMANDS = (prompts,)
