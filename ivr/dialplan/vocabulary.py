"""What goes into the engine (events) and what comes out of it (actions and notes).

All are frozen dataclasses. Runtimes (the web server, the simulator, ``ivr simulate``) turn
real-world happenings into events and carry actions out; notes are for transcripts and the
call event log and need no carrying out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ivr.dialplan.schema import ListenSpec

AnsweredBy = Literal["human", "machine", "unknown"]
LookupStatus = Literal["ok", "not_found", "error"]


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallAnswered:
    answered_by: AnsweredBy = "human"


@dataclass(frozen=True)
class KeysPressed:
    keys: str


@dataclass(frozen=True)
class SpeechRecognized:
    text: str
    confidence: float = 1.0


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class LookupFinished:
    status: LookupStatus
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallerHungUp:
    pass


Event = CallAnswered | KeysPressed | SpeechRecognized | NoInput | LookupFinished | CallerHungUp


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    language: str


@dataclass(frozen=True)
class Play:
    path: str


@dataclass(frozen=True)
class Listen:
    """Collect the caller's answer; the prompts before it may be interrupted by a key."""

    state: str
    spec: ListenSpec
    language: str


@dataclass(frozen=True)
class Lookup:
    method: Literal["GET", "POST"]
    url: str
    params: dict[str, str]
    timeout: float


@dataclass(frozen=True)
class SendSms:
    text: str


@dataclass(frozen=True)
class SetOutcome:
    outcome: str


@dataclass(frozen=True)
class Transfer:
    number: str


@dataclass(frozen=True)
class HangUp:
    pass


# -- notes (for transcripts and the event log) ----------------------------------------------


@dataclass(frozen=True)
class Entered:
    state: str
    previous: str | None
    reason: str


@dataclass(frozen=True)
class Understood:
    """How the engine read the caller's input: an intent, digits, or nothing (no match)."""

    state: str
    intent: str | None
    digits: str | None
    heard: str
    confidence: float


@dataclass(frozen=True)
class Problem:
    """Something in the plan failed at run time (a template, a loop); the call carries on."""

    state: str | None
    message: str


Action = Say | Play | Listen | Lookup | SendSms | SetOutcome | Transfer | HangUp
Note = Entered | Understood | Problem
Output = Action | Note
