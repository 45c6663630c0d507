"""The plans page's "try it" panel: a call of a plan in the browser, as ``ivr call`` does it.

The call runs through the in-process simulation runtime (ivr/simulation/call.py) and so
through the pure engine, one form POST per caller turn. Nothing is kept on the server
between turns: the session and the transcript so far travel in a signed token in the form
(HMAC with a key of their own derived from the server's secret), so any worker process can
take the next turn, a restart loses nothing, and nobody can feed the engine a session it
did not produce. The token names the plan file's hash: a plan edited mid-call is refused
with a message instead of being stepped from a state that may no longer exist.

Lookups are real HTTP requests, as in ``ivr call``; they block, so a turn runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass
from typing import Any

from ivr.dialplan.schema import Plan, VariableSpec
from ivr.dialplan.session import Session
from ivr.dialplan.variables import VariableError, coerce_variables
from ivr.dialplan.vocabulary import CallerHungUp, Event, KeysPressed, NoInput, SpeechRecognized
from ivr.integrations.lookups import http_lookup
from ivr.simulation.call import Line, LookupResolver, SimulatedCall
from ivr.simulation.runner import DEFAULT_CALLER

# A transcript longer than this keeps its latest lines (the form carries all of them).
MAX_LINES = 400
MAX_INPUT = 200
KEYS = set("0123456789*#")


class TryItError(ValueError):
    """A turn that cannot be taken; the message is shown to the operator."""


@dataclass(frozen=True)
class TryIt:
    """Where a tried call stands: its transcript, and the token that continues it."""

    lines: list[Line]
    token: str
    ended: bool
    outcome: str | None
    end_reason: str | None
    listening: str | None


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"ivr console try-it v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(secret: bytes, plan_hash: str, call: SimulatedCall) -> str:
    doc = {
        "p": call.plan.id,
        "h": plan_hash,
        "s": call.session.to_json(),
        "l": [line.to_json() for line in call.lines[-MAX_LINES:]],
    }
    # Compressed: a transcript repeats itself a lot, and the form sends it back every turn.
    payload = _b64(zlib.compress(json.dumps(doc, separators=(",", ":")).encode()))
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def _line_of(doc: dict[str, Any]) -> Line:
    data = dict(doc)
    return Line(data.pop("kind"), str(data.pop("text")), data)


def decode_token(secret: bytes, token: str, plan: Plan, plan_hash: str) -> SimulatedCall:
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature):
        raise TryItError("this call's form is not one the server made: start a new call")
    doc = json.loads(zlib.decompress(_unb64(payload)))
    if doc["p"] != plan.id:
        raise TryItError(f"this call is of plan {doc['p']!r}, not {plan.id!r}")
    if doc["h"] != plan_hash:
        raise TryItError("the plan file changed since this call started: start a new call")
    call = SimulatedCall(plan, {}, lookup_for_try_it())
    call.session = Session.from_json(doc["s"])
    call.lines = [_line_of(line) for line in doc["l"]]
    return call


def lookup_for_try_it() -> LookupResolver:
    return http_lookup


def event_of(text: str, action: str) -> Event:
    """What the caller did: ``say`` the text (digits and * # are keys), silence, or hang up."""
    if action == "hangup":
        return CallerHungUp()
    if action == "silence":
        return NoInput()
    reply = text.strip()
    if len(reply) > MAX_INPUT:
        raise TryItError(f"a reply is at most {MAX_INPUT} characters")
    if not reply:
        return NoInput()
    if set(reply) <= KEYS:
        return KeysPressed(reply)
    # As typed in ``ivr call``: understood with full confidence.
    return SpeechRecognized(reply, 1.0)


def sample_value(name: str, spec: VariableSpec, today: dt.date) -> str:
    """A value to start from in the variables form (the operator can change it)."""
    if spec.default is not None:
        return str(spec.default)
    tomorrow = today + dt.timedelta(days=1)
    samples = {
        "str": "Ann" if name == "name" else name.replace("_", " ").title(),
        "int": "1", "float": "1.5", "bool": "true", "date": tomorrow.isoformat(),
        "datetime": f"{tomorrow.isoformat()}T10:00", "time": "10:00", "digits": "12345",
        "phone": DEFAULT_CALLER, "money": "12.50", "json": "{}",
    }  # fmt: skip
    return samples.get(spec.type, "")


def variables_of(plan: Plan, given: dict[str, str]) -> dict[str, Any]:
    """The plan's typed variables from the form; VariableError names each bad field."""
    values: dict[str, Any] = coerce_variables(
        plan, {name: value for name, value in given.items() if name in plan.variables}
    )
    values.setdefault("caller", DEFAULT_CALLER)
    return values


def _state(call: SimulatedCall, secret: bytes, plan_hash: str) -> TryIt:
    listening = None
    for line in reversed(call.lines):
        if line.kind == "listen":
            listening = line.text
            break
        if line.kind in ("caller", "hangup"):
            break
    return TryIt(
        lines=call.lines,
        token=encode_token(secret, plan_hash, call),
        ended=call.ended,
        outcome=call.session.outcome,
        end_reason=call.session.end_reason,
        listening=None if call.ended else listening,
    )


async def start(plan: Plan, plan_hash: str, secret: bytes, given: dict[str, str]) -> TryIt:
    """Answer a new call of ``plan``; raises VariableError for bad variables."""
    variables = variables_of(plan, given)

    def answer() -> TryIt:
        call = SimulatedCall(plan, variables, lookup_for_try_it())
        call.answer()
        return _state(call, secret, plan_hash)

    return await asyncio.to_thread(answer)


async def reply(
    plan: Plan, plan_hash: str, secret: bytes, token: str, text: str, action: str
) -> TryIt:
    """The caller's next turn in the call ``token`` continues."""
    try:
        call = decode_token(secret, token, plan, plan_hash)
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        if isinstance(exc, TryItError):
            raise
        raise TryItError("this call's form is damaged: start a new call") from exc
    if call.ended:
        raise TryItError("this call has ended: start a new one")
    event = event_of(text, action)

    def turn() -> TryIt:
        call.send(event)
        return _state(call, secret, plan_hash)

    return await asyncio.to_thread(turn)


__all__ = ["TryIt", "TryItError", "VariableError", "reply", "sample_value", "start"]
