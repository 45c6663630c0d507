"""The dial-plan language: pydantic models for the YAML an operator writes.

Field-level rules live here; rules that need the whole plan (targets exist, states are
reachable, templates use declared variables, ...) live in ``checks.py`` so that every
problem of a plan is reported at once with its line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ivr.dialplan.durations import Duration

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
PlanId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
# Plans list the numbers they answer as the provider sends them (E.164). Short codes and
# test numbers are legal here, so this checks the form, not the numbering plan.
E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{4,14}$")]
Key = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]

VariableType = Literal[
    "str", "int", "float", "bool", "date", "datetime", "time", "digits", "phone", "money", "json"
]

# Outcomes the rest of the product reacts to (the outbound policy opts a number out on
# ``opted_out``); plans may use any other label too.
OPTED_OUT = "opted_out"
VOICEMAIL = "voicemail"


def _bcp47(value: str) -> str:
    try:
        Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError) as exc:
        raise ValueError(f"unknown language {value!r}: use a BCP 47 tag such as en-US") from exc
    return value


Language = Annotated[str, AfterValidator(_bcp47)]


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str | int | float) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSpec(_Strict):
    type: VariableType = "str"
    default: Any = None
    description: str | None = None


def _variable_shorthand(value: object) -> object:
    # ``name: str`` is shorthand for ``name: {type: str}``.
    return {"type": value} if isinstance(value, str) else value


class Intent(_Strict):
    say: Annotated[list[str], BeforeValidator(_as_list)] = []
    press: Key | None = None

    @field_validator("say")
    @classmethod
    def _phrases_not_blank(cls, phrases: list[str]) -> list[str]:
        if any(not str(p).strip() for p in phrases):
            raise ValueError("a phrase is empty")
        return [str(p) for p in phrases]


class DigitsSpec(_Strict):
    min: int = Field(default=1, ge=1, le=32)
    max: int = Field(default=16, ge=1, le=32)
    finish_on: Key | None = "#"
    # Read the number back before accepting it: ``auto`` when it was spoken with a confidence
    # below ``confirm_below`` (typed digits are never read back), ``always``, or ``never``.
    confirm: Literal["auto", "always", "never"] = "auto"
    confirm_below: float = Field(default=0.8, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> DigitsSpec:
        if self.min > self.max:
            raise ValueError(f"digits: min {self.min} is above max {self.max}")
        return self


class ListenSpec(_Strict):
    intents: dict[Identifier, Intent] = {}
    digits: DigitsSpec | None = None
    into: Identifier = "digits"
    timeout: Duration = 5.0
    retries: int = Field(default=2, ge=0, le=10)
    no_input: str | None = None
    no_match: str | None = None
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    # Said after ``no_match`` when a spoken answer was turned away; None: derived from the
    # intents' keys ("You can also press 1 for yes, or 2 for no."), "" for none.
    key_hint: str | None = None
    # Live audio (Media Streams): this much trailing silence after speech ends the answer.
    end_silence: Duration = 0.5

    @field_validator("end_silence")
    @classmethod
    def _end_silence_range(cls, seconds: float) -> float:
        # Shorter cuts callers off between words; longer makes every answer feel slow.
        if not 0.1 <= seconds <= 5.0:
            raise ValueError(f"end_silence must be between 100ms and 5s, not {seconds:g}s")
        return seconds

    @model_validator(mode="after")
    def _one_kind(self) -> ListenSpec:
        if bool(self.intents) == (self.digits is not None):
            raise ValueError("listen needs either intents or digits (exactly one of them)")
        return self


class LookupSpec(_Strict):
    url: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str] = {}
    timeout: Duration = 3.0
    into: Identifier = "result"


class State(_Strict):
    description: str | None = None
    set: dict[Identifier, str] = {}
    say: str | None = None
    play: str | None = None
    sms: str | None = None
    outcome: Identifier | None = None
    lookup: LookupSpec | None = None
    listen: ListenSpec | None = None
    transfer: str | None = None
    hangup: bool = False
    # Live audio (Media Streams): false keeps the caller from interrupting this state's
    # prompt (a notice that must be heard whole); speech and keys count only after it.
    barge_in: bool = True
    next: str | None = None
    on: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_prompt_and_one_wait(self) -> State:
        if self.say is not None and self.play is not None:
            raise ValueError("a state either says or plays, not both")
        if self.listen is not None and self.lookup is not None:
            raise ValueError("a state either listens or looks up, not both")
        return self


class Attempts(_Strict):
    max: int = Field(default=1, ge=1, le=10)
    retry_after: Annotated[list[Duration], BeforeValidator(_as_list)] = [600.0]

    @field_validator("retry_after")
    @classmethod
    def _not_empty(cls, delays: list[float]) -> list[float]:
        if not delays:
            raise ValueError("retry_after needs at least one duration")
        return delays

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 = first retry)."""
        return self.retry_after[min(max(attempt - 2, 0), len(self.retry_after) - 1)]


class Plan(_Strict):
    id: PlanId
    direction: Literal["outbound", "inbound"]
    language: Language
    category: Identifier = "transactional"
    description: str | None = None
    variables: dict[Identifier, Annotated[VariableSpec, BeforeValidator(_variable_shorthand)]] = {}
    attempts: Attempts = Attempts()
    fallback_sms: str | None = None
    voicemail: str | None = None
    numbers: list[E164] = []
    max_turns: int = Field(default=30, ge=1, le=1000)
    start: str
    states: dict[Identifier, State] = Field(min_length=1)

    @property
    def locale(self) -> str:
        """The Babel locale name of the plan's language (``en-US`` -> ``en_US``)."""
        return self.language.replace("-", "_")
