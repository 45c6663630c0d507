"""``ivr models``: which speech recognition models are installed, and fetching official ones."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ivr.speech.models import (
    OFFICIAL_BASE_URL,
    ModelDownloadError,
    default_cache_dir,
    download_model,
    list_models,
)
from ivr.speech.sphinx_engine import supports_language


@click.group("models")
def models() -> None:
    """Speech recognition models (Vosk) per language."""


@models.command("list")
def list_command() -> None:
    """Installed models in discovery order; the first one per language is used."""
    found = list_models()
    rows = [("language", "model", "source", "used", "path")]
    used: set[str] = set()
    for model in found:
        first = model.language not in used
        used.add(model.language)
        rows.append(
            (model.language, model.name, model.source, "yes" if first else "", str(model.path))
        )
    if supports_language("en") and "en" not in used:
        rows.append(("en", "pocketsphinx en-us", "bundled", "fallback", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[4]]))
    if not found:
        click.echo(
            f"No Vosk model installed: `ivr models download NAME` puts one in {default_cache_dir()}"
        )


@models.command("download")
@click.argument("name")
@click.option("--url-base", default=OFFICIAL_BASE_URL, show_default=True,
              help="Where the model archives and model-list.json are served.")  # fmt: skip
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to install into (default: ~/.cache/vosk).")  # fmt: skip
def download_command(name: str, url_base: str, dest: Path | None) -> None:
    """Download the official Vosk model NAME (e.g. vosk-model-small-en-us-0.15)."""
    try:
        path = download_model(name, dest=dest, base_url=url_base, console=Console(stderr=True))
    except ModelDownloadError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{name} installed in {path}")


COMMANDS = (models,)
