"""A streamed turn's prompts as the event log keeps them (``live_prompts``).

A turn answered with a media stream is committed with its prompts (and whether each may be
interrupted) in the call's event log, so that any stream on any server can play them from
the database alone. ``live_heard`` records what the stream heard before the turn was taken.
"""

from __future__ import annotations

from typing import Any

from ivr.calls.turns import Turn
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session
from ivr.dialplan.vocabulary import Entered, Output, Play, Say

LIVE_PROMPTS = "live_prompts"
LIVE_HEARD = "live_heard"


def barge_flags(
    plan: Plan, state: str | None, outputs: list[Output]
) -> list[tuple[Say | Play, bool]]:
    """Each prompt with its state's ``barge_in`` (the state most recently entered)."""
    flags: list[tuple[Say | Play, bool]] = []
    for output in outputs:
        if isinstance(output, Entered):
            state = output.state
        elif isinstance(output, Say | Play):
            found = plan.states.get(state or "")
            flags.append((output, found.barge_in if found is not None else True))
    return flags


def _prompt_entry(prompt: Say | Play, barge_in: bool) -> dict[str, Any]:
    if isinstance(prompt, Say):
        return {"say": prompt.text, "language": prompt.language, "barge_in": barge_in}
    return {"play": prompt.path, "barge_in": barge_in}


def prompt_of(entry: dict[str, Any]) -> tuple[Say | Play, bool] | None:
    """A prompt back from its log entry (None for an entry this code did not write)."""
    barge_in = bool(entry.get("barge_in", True))
    if isinstance(entry.get("say"), str) and isinstance(entry.get("language"), str):
        return Say(entry["say"], entry["language"]), barge_in
    if isinstance(entry.get("play"), str):
        return Play(entry["play"]), barge_in
    return None


def prompts_entry(
    number: int, plan: Plan, session: Session, turn: Turn
) -> tuple[str, dict[str, Any]]:
    """The ``live_prompts`` log entry of turn ``number`` (``session``: before the turn)."""
    flags = barge_flags(plan, session.state, turn.outputs)
    return LIVE_PROMPTS, {"turn": number, "prompts": [_prompt_entry(p, b) for p, b in flags]}
