"""Server configuration from the environment (``IVR_*``) and an optional TOML file.

The environment wins over the file (``IVR_CONFIG=/etc/ivr.toml``, keys without the prefix in
lower case: ``database_url = "..."``). ``plan_variables`` sets plan variables per plan id
(``[plan_variables.order_status_line]`` in the file, JSON in ``IVR_PLAN_VARIABLES``): an
inbound call has no integrator to pass them, so this is where its operator number lives.

A missing or invalid setting stops start-up with a message naming the variable, before
anything listens or dials.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.dialplan.durations import Duration
from ivr.outbound.policy import (
    PolicySettings,
    optional_window_following,
    parse_call_window,
    parse_frequency_cap,
)
from ivr.speech.models import is_model_dir

PREFIX = "IVR_"
DEFAULT_DATABASE_URL = "sqlite:///var/ivr.db"
SIMULATOR_NUMBER = "+12025550100"
DEFAULT_HELP_TEXT = "Reply STOP to stop calls and messages, START to receive them again."


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


def _env_name(field: str) -> str:
    return PREFIX + field.upper()


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    public_url: str | None = None
    dialplans: Path = Path("dialplans")
    audio_dir: Path = Path("audio")
    var_dir: Path = Path("var")
    provider: Literal["simulator", "twilio"] = "simulator"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    twilio_from: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{4,14}$")
    api_token: str | None = None
    secret_key: str | None = None
    recording_retention: Literal["delete", "keep"] = "delete"
    # How a caller is heard: ``stream`` (Twilio Media Streams: live audio over a WebSocket,
    # barge-in) or ``record`` (<Gather>/<Record>, for providers without streams). Still
    # ``record`` by default: with ``stream`` the suite does not pass yet (README, "Media
    # Streams": scenarios that time out in real time, one heard the wrong way, 50 calls at
    # once miss the 1 s reply target). ``ivr demo`` and ``ivr simulate --server`` stream.
    twilio_media: Literal["stream", "record"] = "record"
    sms_help_text: str = DEFAULT_HELP_TEXT
    plan_variables: dict[str, dict[str, str]] = {}
    # Vosk model directories per language ({"ru": "/srv/models/vosk-model-small-ru-0.22"}):
    # looked at before installed packages, $VOSK_MODEL_PATH and ~/.cache/vosk.
    vosk_models: dict[str, Path] = {}
    # Outbound notifications (see ivr/outbound/policy.py for what each rule does).
    call_window: str = "09:00-21:00"
    # Unset: follows call_window (see optional_window_following); set, it must lie inside it.
    optional_call_window: str | None = None
    default_timezone: str = "UTC"
    frequency_cap: str = "1/7d"
    transactional_sms_to_do_not_call: bool = False
    max_concurrent_calls: int = Field(default=10, ge=1, le=10_000)
    calls_per_second: float = Field(default=1.0, gt=0, le=1000)
    ring_timeout: Duration = 30.0
    scheduler_interval: Duration = 0.25
    lease: Duration = 60.0
    # How long an attempt the provider never confirmed may stay unknown before it counts as
    # failed (it may still exist: its status callback would tell within the ring timeout).
    unconfirmed_call_grace: Duration = 120.0
    webhook_secret: str | None = None
    audio_url_ttl: Duration = 3600.0
    recognition_budget: Duration = 2.0
    # Answers decoded at once per engine kind (PocketSphinx processes, Vosk threads); unset:
    # one per core, at most 4.
    asr_workers: int | None = Field(default=None, ge=1, le=64)
    # Voice activity detector of live calls (ivr.speech.vad.make_vad); unset: Silero, or
    # WebRTC where Silero's model is not installed.
    vad: Literal["silero", "webrtc", "energy"] | None = None
    # Wall-clock seconds per second of prompt audio sent over a media stream: 1 (real time)
    # for a real provider; less only for a simulator playing faster than real time (its
    # stream_time_scale), as the tests' simulated streaming calls do.
    stream_pace: float = Field(default=1.0, gt=0, le=1)
    # Operator console sign-in: user name -> password hash (``ivr console-user NAME`` prints
    # one); in the environment ``name:hash,name:hash`` or JSON. The API token also signs in.
    console_users: dict[str, str] = {}
    console_session: Duration = 12 * 3600.0

    @field_validator("public_url", "twilio_api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("console_users", mode="before")
    @classmethod
    def _console_users(cls, value: Any) -> Any:
        """``name:hash,name:hash`` (a hash holds no ``:`` or ``,``) or a JSON object."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("{"):
            return json.loads(value)
        users = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, hashed = item.partition(":")
            if not sep or not name.strip() or not hashed.strip():
                raise ValueError(f"{item!r} is not name:hash (ivr console-user NAME prints one)")
            users[name.strip()] = hashed.strip()
        return users

    @field_validator("console_users")
    @classmethod
    def _console_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, hashed in value.items():
            if hashed.split("$", 1)[0] not in ("scrypt", "pbkdf2_sha256"):
                raise ValueError(f"{name}: not a password hash (ivr console-user NAME prints one)")
        return value

    @field_validator("vosk_models")
    @classmethod
    def _model_dirs(cls, value: dict[str, Path]) -> dict[str, Path]:
        for language, path in value.items():
            if not is_model_dir(path.expanduser()):
                raise ValueError(
                    f"{language}: {path} is not a Vosk model directory (am/final.mdl, conf/)"
                )
        return {language: path.expanduser() for language, path in value.items()}

    @model_validator(mode="after")
    def _twilio_needs_credentials(self) -> Settings:
        if self.provider == "twilio":
            for field in ("twilio_account_sid", "twilio_auth_token", "twilio_from", "public_url"):
                if not getattr(self, field):
                    raise ValueError(f"{_env_name(field)} is required when IVR_PROVIDER=twilio")
        return self

    @model_validator(mode="after")
    def _policy_is_valid(self) -> Settings:
        self.policy()
        return self

    def policy(self) -> PolicySettings:
        """The outbound policy these settings describe (ValueError naming the bad one)."""
        windows = {}
        for field in ("call_window", "optional_call_window"):
            if (text := getattr(self, field)) is None:
                continue
            try:
                windows[field] = parse_call_window(text)
            except ValueError as exc:
                raise ValueError(f"{_env_name(field)}: {exc}") from exc
        if "optional_call_window" not in windows:
            windows["optional_call_window"] = optional_window_following(windows["call_window"])
        try:
            cap = parse_frequency_cap(self.frequency_cap)
        except ValueError as exc:
            raise ValueError(f"{_env_name('frequency_cap')}: {exc}") from exc
        try:
            return PolicySettings(
                call_window=windows["call_window"],
                optional_call_window=windows["optional_call_window"],
                default_timezone=self.default_timezone,
                frequency_cap=cap,
                transactional_sms_to_do_not_call=self.transactional_sms_to_do_not_call,
            )
        except ValueError as exc:
            raise ValueError(
                f"IVR_CALL_WINDOW / IVR_OPTIONAL_CALL_WINDOW / IVR_DEFAULT_TIMEZONE: {exc}"
            ) from exc

    def describe_call_windows(self) -> str:
        """The calling windows in force, for the start-up log."""
        policy = self.policy()
        origin = "set" if self.optional_call_window is not None else "following IVR_CALL_WINDOW"
        return (
            f"calling window {policy.call_window} (transactional), "
            f"{policy.optional_call_window} for optional categories ({origin})"
        )

    @property
    def caller_id(self) -> str:
        """The number outbound calls and SMS come from (a fictional one for the simulator)."""
        return self.twilio_from or SIMULATOR_NUMBER

    def base_url(self, host: str, port: int) -> str:
        """The URL the provider reaches this server at (signatures and callbacks use it)."""
        return self.public_url or f"http://{host}:{port}"


def _from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"IVR_CONFIG: cannot read {path}: {exc}") from exc


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: the process environment) and ``IVR_CONFIG``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file := env.get(PREFIX + "CONFIG"):
        values.update(_from_file(Path(config_file)))
    for field in Settings.model_fields:
        if (value := env.get(_env_name(field))) is not None and value != "":
            values[field] = value
    for field in ("plan_variables", "vosk_models"):
        if isinstance(raw := values.get(field), str):
            try:
                values[field] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{_env_name(field)}: not JSON ({exc})") from exc
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                problems.append(f"IVR_CONFIG: unknown setting {field!r}")
            elif field:
                problems.append(f"{_env_name(field)}: {message}")
            else:
                problems.append(message)
        raise ConfigError("; ".join(problems)) from exc
