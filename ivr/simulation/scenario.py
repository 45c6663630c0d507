"""Scripted call scenarios: what the caller does, turn by turn, and what must happen.

```yaml
plan: appointment_reminder
name: confirms by voice
variables: {name: Anna, clinic: Sunrise Clinic, when: "2026-11-24T10:00"}
answered_by: human            # human | machine | unknown
turns:
  - expect: Tuesday, November 24    # robot said this since the caller's previous turn
    say: "yes"                      # the caller speaks (or press: "1", silence: true,
    intent: confirm                 #   hangup: true, audio: 3_jackson_0.wav)
expect: {outcome: confirmed, sms: [], end: hangup}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ivr.dialplan.loader import PlanError, PlanLoadError, describe_error
from ivr.dialplan.vocabulary import AnsweredBy, LookupStatus
from ivr.dialplan.yamlio import YamlError, load_yaml


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Texts = Annotated[list[str], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Turn(_Strict):
    expect: Texts = []
    say: str | None = None
    press: str | None = Field(default=None, pattern=r"^[0-9*#]+$")
    audio: str | None = None
    silence: bool = False
    hangup: bool = False
    intent: str | None = None
    digits: str | None = None
    # How sure the recognizer is of a ``say`` turn (text mode): below a state's threshold the
    # plan turns the answer away, below ``confirm_below`` a digit string is read back.
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    # Over a Media Stream the caller acts once the robot stopped talking; with barge_in_ms the
    # caller starts this many ms after the robot's prompt started playing (interrupting it).
    # Record/Gather calls and text simulations ignore it.
    barge_in_ms: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_action(self) -> Turn:
        actions = [self.say is not None, self.press is not None, self.audio is not None]
        actions += [self.silence, self.hangup]
        if sum(actions) > 1:
            raise ValueError("a turn does one thing: say, press, audio, silence or hangup")
        if sum(actions) == 0 and not self.expect:
            raise ValueError("an empty turn: give expect, say, press, audio, silence or hangup")
        return self

    @property
    def acts(self) -> bool:
        return any((self.say is not None, self.press is not None, self.audio is not None,
                    self.silence, self.hangup))  # fmt: skip

    @property
    def pins_confidence(self) -> bool:
        return self.say is not None and self.confidence < 1.0


class ScriptedLookup(_Strict):
    status: LookupStatus = "ok"
    data: dict[str, Any] = {}


class Expectations(_Strict):
    outcome: str | None = None
    end: Literal["hangup", "transfer", "caller_hangup", "voicemail", "max_turns"] | None = None
    transfer: str | None = None
    sms: Texts | None = None
    said: Texts = []
    states: list[str] = []


class Scenario(_Strict):
    """A scripted call. A turn's ``confidence`` holds in text mode only: real audio brings the
    recognizer's own, so a scenario that pins one is not run with audio."""

    plan: str
    name: str
    description: str | None = None
    variables: dict[str, Any] = {}
    answered_by: AnsweredBy = "human"
    caller: str | None = None
    called: str | None = None
    lookups: list[ScriptedLookup] | None = None
    turns: list[Turn] = []
    expect: Expectations = Expectations()

    @property
    def text_only(self) -> bool:
        return any(turn.pins_confidence for turn in self.turns)


def load_scenario(path: Path) -> Scenario:
    """Parse a scenario file; raises ``PlanLoadError`` with ``file:line`` errors."""
    try:
        data, lines = load_yaml(path.read_text(encoding="utf-8"))
    except YamlError as exc:
        raise PlanLoadError([PlanError(str(path), exc.line, None, exc.message)]) from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        errors = []
        for detail in exc.errors():
            loc, _, message = describe_error(detail)
            errors.append(PlanError(str(path), lines.line_of(loc), "scenario", message))
        raise PlanLoadError(errors) from exc


def scenario_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))
