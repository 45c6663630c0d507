"""``ivr serve``: the webhook server."""

from __future__ import annotations

import logging

import click
from aiohttp import web

from ivr.calls.recognition import OfflineRecognizer
from ivr.config import ConfigError, load_settings
from ivr.speech.asr import AsrConfig
from ivr.web.app import AppParts, create_app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Run the webhook server (configuration from IVR_* variables; see the README)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc
    recognizer = OfflineRecognizer(
        AsrConfig(models=settings.vosk_models, workers=settings.asr_workers)
    )
    app = create_app(settings, settings.base_url(host, port), AppParts(recognizer=recognizer))
    web.run_app(app, host=host, port=port, print=lambda text: click.echo(text, err=True))


COMMANDS = (serve,)
