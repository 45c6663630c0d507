"""A call's event log as the timeline an operator reads: who said what, when, and why.

The log holds the engine's events and outputs by class name (``Say``, ``Understood``,
``Entered``...; see ivr.calls.turns.log_entry) and the server's own (``status``, ``placed``,
``error``). Each becomes one entry with a speaker lane; bookkeeping (``recognition_wait``,
``webhook``) is left out, and a raw ``SpeechRecognized`` is folded into the ``Understood``
that follows it (the same words, once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ivr.store import CallEventRecord

Lane = Literal["robot", "caller", "keys", "state", "status", "problem"]
HIDDEN = frozenset({"recognition_wait", "webhook", "SpeechRecognized", "LookupFinished_raw"})


@dataclass(frozen=True)
class Entry:
    at: datetime
    offset: float  # seconds since the call's first event
    lane: Lane
    who: str  # the label shown in the lane column
    text: str
    detail: str | None = None
    confidence: float | None = None
    audio_event: int | None = None  # a prompt's event id: the page offers its audio


def _listen_detail(data: dict[str, Any]) -> str | None:
    spec = data.get("spec")
    intents = spec.get("intents") if isinstance(spec, dict) else None
    if isinstance(intents, dict) and intents:
        return "listening for: " + ", ".join(str(name) for name in intents)
    return None


def _entry(event: CallEventRecord) -> tuple[Lane, str, str, str | None] | None:
    """(lane, who, text, detail) for one event, or None to leave it out."""
    d = event.data
    kind = event.kind
    if kind == "Say":
        return "robot", "Robot", str(d.get("text", "")), d.get("language")
    if kind == "Play":
        return "robot", "Robot", f"plays {d.get('path', 'a recording')}", None
    if kind == "Understood":
        heard = str(d.get("heard", "")) or "(nothing)"
        intent = d.get("intent")
        return "caller", "Caller", heard, f"understood as {intent}" if intent else "not understood"
    if kind in ("KeysPressed", "KeysTyped"):
        return "keys", "Keys", str(d.get("keys", "")), None
    if kind == "NoInput":
        return "caller", "Caller", "(silence)", None
    if kind == "CallerHungUp":
        return "caller", "Caller", "hung up", None
    if kind == "Entered":
        previous = d.get("previous")
        text = f"{previous} → {d.get('state')}" if previous else f"→ {d.get('state')}"
        return "state", "State", text, d.get("reason")
    if kind == "Listen":
        return "state", "Listens", str(d.get("state", "")), _listen_detail(d)
    if kind == "SetOutcome":
        return "state", "Outcome", str(d.get("outcome", "")), None
    if kind == "SendSms":
        return "robot", "SMS", str(d.get("text", "")), "sent as a text message"
    if kind == "Transfer":
        return "robot", "Transfer", f"to {d.get('number', '?')}", None
    if kind == "HangUp":
        return "robot", "Robot", "hangs up", None
    if kind == "Lookup":
        return "state", "Lookup", f"{d.get('method', 'GET')} {d.get('url', '')}", None
    if kind == "LookupFinished":
        return "state", "Lookup", str(d.get("status", "")), None
    if kind == "CallAnswered":
        return "status", "Call", f"answered ({d.get('answered_by', 'unknown')})", None
    if kind == "status":
        return "status", "Call", str(d.get("status", "")), None
    if kind == "placed":
        return "status", "Call", "placed with the provider", d.get("sid")
    if kind in ("Problem", "error"):
        text = d.get("message") or "; ".join(f"{k}: {v}" for k, v in d.items())
        return "problem", "Problem", str(text), None
    if kind in HIDDEN:
        return None
    return "status", kind, ", ".join(f"{k}: {v}" for k, v in d.items()), None


def timeline(events: Sequence[CallEventRecord]) -> list[Entry]:
    """The entries of one call's events, in order."""
    if not events:
        return []
    start = events[0].at
    entries = []
    for event in events:
        shown = _entry(event)
        if shown is None:
            continue
        lane, who, text, detail = shown
        confidence = event.data.get("confidence") if event.kind == "Understood" else None
        entries.append(
            Entry(
                at=event.at,
                offset=(event.at - start).total_seconds(),
                lane=lane,
                who=who,
                text=text,
                detail=detail,
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
                audio_event=event.id if event.kind in ("Say", "Play") else None,
            )
        )
    return entries


def prompt_events(events: Iterable[CallEventRecord]) -> dict[int, CallEventRecord]:
    return {e.id: e for e in events if e.kind in ("Say", "Play")}
