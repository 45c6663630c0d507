"""A call carried out in-process: the engine's runtime for simulations and ``ivr call``.

It feeds events to the pure engine, performs lookups through an injected resolver, and
keeps a transcript of everything that happened (prompts, caller turns, how the input was
understood, transitions, SMS, outcome).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ivr.dialplan.engine import step
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session, new_session
from ivr.dialplan.vocabulary import (
    AnsweredBy,
    CallAnswered,
    Entered,
    Event,
    HangUp,
    KeysPressed,
    Listen,
    Lookup,
    LookupFinished,
    NoInput,
    Output,
    Play,
    Problem,
    Say,
    SendSms,
    SetOutcome,
    SpeechRecognized,
    Transfer,
    Understood,
)

LineKind = Literal[
    "robot", "play", "caller", "heard", "listen", "understood", "enter", "sms", "outcome",
    "transfer", "hangup", "lookup", "problem",
]  # fmt: skip

LookupResolver = Callable[[Lookup], LookupFinished]


@dataclass(frozen=True)
class Line:
    """One transcript line; ``data`` holds the details ``--json`` shows."""

    kind: LineKind
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, **self.data}


def _listen_summary(action: Listen) -> str:
    spec = action.spec
    if spec.digits is not None:
        finish = f", finish with {spec.digits.finish_on}" if spec.digits.finish_on else ""
        return f"listening for {spec.digits.min}-{spec.digits.max} digits{finish}"
    parts = []
    for name, intent in spec.intents.items():
        parts.append(f"{name} ({intent.press})" if intent.press else name)
    return "listening for " + ", ".join(parts)


def describe_event(event: Event) -> str:
    if isinstance(event, KeysPressed):
        return f"presses {event.keys}"
    if isinstance(event, SpeechRecognized):
        return f'says "{event.text}"'
    if isinstance(event, NoInput):
        return "(silence)"
    return "hangs up"


class SimulatedCall:
    """One call of ``plan`` driven by events, with its transcript so far."""

    def __init__(
        self,
        plan: Plan,
        variables: dict[str, Any],
        lookup: LookupResolver,
        answered_by: AnsweredBy = "human",
    ) -> None:
        self.plan = plan
        self.session: Session = new_session(plan.id, variables)
        self.answered_by: AnsweredBy = answered_by
        self.lookup = lookup
        self.lines: list[Line] = []
        self.listening: Listen | None = None
        self.sms: list[str] = []
        self.transfer: str | None = None
        self.states: list[str] = []
        self.intents: list[str] = []

    @property
    def ended(self) -> bool:
        return self.session.ended

    def answer(self) -> list[Line]:
        return self.send(CallAnswered(self.answered_by))

    def send(
        self, event: Event, heard_as: str | None = None, notes: Sequence[Line] = ()
    ) -> list[Line]:
        """Feed one event (and the lookups it triggers); returns the new transcript lines.

        ``heard_as`` replaces the description of the caller's action; ``notes`` (how a
        recognizer heard it) follow the caller's line, before the robot's reaction.
        """
        start = len(self.lines)
        if not isinstance(event, CallAnswered | LookupFinished):
            text = heard_as or describe_event(event)
            self.lines.append(Line("caller", text, {"event": type(event).__name__}))
        self.lines.extend(notes)
        pending: Event | None = event
        while pending is not None:
            self.session, outputs = step(self.plan, self.session, pending)
            pending = self._apply(outputs)
        return self.lines[start:]

    def _apply(self, outputs: list[Output]) -> Event | None:
        """Record outputs; returns the lookup result to feed back, if a lookup was asked."""
        follow_up: Event | None = None
        self.listening = None
        for output in outputs:
            self._record(output)
            if isinstance(output, Listen):
                self.listening = output
            elif isinstance(output, Lookup):
                follow_up = self.lookup(output)
                self.lines.append(
                    Line("lookup", f"lookup {output.method} {output.url} -> {follow_up.status}",
                         {"url": output.url, "status": follow_up.status, "data": follow_up.data})
                )  # fmt: skip
        return follow_up

    def _record(self, output: Output) -> None:
        if isinstance(output, Say):
            self.lines.append(Line("robot", output.text, {"language": output.language}))
        elif isinstance(output, Play):
            self.lines.append(Line("play", f"[plays {output.path}]", {"path": output.path}))
        elif isinstance(output, Listen):
            self.lines.append(Line("listen", _listen_summary(output), {"state": output.state}))
        elif isinstance(output, Entered):
            self.states.append(output.state)
            text = f"-> {output.state} ({output.reason})"
            self.lines.append(Line("enter", text, {"state": output.state, "from": output.previous}))
        elif isinstance(output, Understood):
            self._record_understood(output)
        elif isinstance(output, SendSms):
            self.sms.append(output.text)
            self.lines.append(Line("sms", output.text))
        elif isinstance(output, SetOutcome):
            self.lines.append(
                Line("outcome", f"outcome: {output.outcome}", {"outcome": output.outcome})
            )
        elif isinstance(output, Transfer):
            self.transfer = output.number
            self.lines.append(
                Line("transfer", f"transfer to {output.number}", {"number": output.number})
            )
        elif isinstance(output, HangUp):
            self.lines.append(Line("hangup", "robot hangs up"))
        elif isinstance(output, Problem):
            self.lines.append(
                Line("problem", f"problem: {output.message}", {"state": output.state})
            )

    def _record_understood(self, note: Understood) -> None:
        if note.intent is not None:
            self.intents.append(note.intent)
            text = f"understood: intent {note.intent}"
        elif note.digits is not None:
            text = f"understood: digits {note.digits}"
        else:
            text = "understood: no match"
        data = {
            "state": note.state,
            "intent": note.intent,
            "digits": note.digits,
            "confidence": note.confidence,
        }
        self.lines.append(Line("understood", f"{text} (confidence {note.confidence:.2f})", data))
