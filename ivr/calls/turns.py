"""One webhook's worth of dial plan: step the engine, follow lookups, log what happened.

Lookups run here, inside the webhook, with the plan's own timeout: the engine asks, this
runtime performs the HTTP request and feeds the answer back until the plan waits for the
caller again (or the call ends).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ivr.dialplan.engine import step
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session
from ivr.dialplan.vocabulary import Event, Lookup, LookupFinished, Output, SendSms

LookupRunner = Callable[[Lookup], Awaitable[LookupFinished]]
# Told each step's outputs as soon as the engine emits them (to start rendering prompts).
OutputListener = Callable[[list[Output]], None]


@dataclass
class Turn:
    """The engine's answer to one event, lookups included."""

    session: Session
    outputs: list[Output] = field(default_factory=list)
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def sms(self) -> list[str]:
        return [o.text for o in self.outputs if isinstance(o, SendSms)]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def log_entry(item: Output | Event) -> tuple[str, dict[str, Any]]:
    """``(kind, data)`` for the call event log: the class name and its fields as JSON."""
    data = {f.name: _plain(getattr(item, f.name)) for f in dataclasses.fields(item)}
    return type(item).__name__, data


async def run_turn(
    plan: Plan,
    session: Session,
    event: Event,
    lookup: LookupRunner,
    emitted: OutputListener | None = None,
) -> Turn:
    turn = Turn(session)
    pending: Event | None = event
    while pending is not None:
        turn.log.append(log_entry(pending))
        turn.session, outputs = step(plan, turn.session, pending)
        turn.outputs += outputs
        if emitted is not None:
            emitted(outputs)
        turn.log += [log_entry(o) for o in outputs]
        asked = next((o for o in outputs if isinstance(o, Lookup)), None)
        pending = await lookup(asked) if asked is not None else None
    return turn
