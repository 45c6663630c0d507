"""The dial-plan engine: ``step(plan, session, event) -> (session, outputs)``.

A pure function: no awaits, no clock, no database, no network, and it never raises on any
event in any session. The caller's session is not modified; a new one is returned.
Entering a state runs, in order: ``set``, ``say``/``play``, ``sms``, ``outcome``, then the
first of ``lookup``, ``listen``, ``transfer``, ``hangup``, ``next``.
"""

from __future__ import annotations

from ivr.dialplan.digits import parse_spoken_digits
from ivr.dialplan.intents import match_keys, match_speech
from ivr.dialplan.recovery import (
    CONFIRMED,
    REJECTED,
    confirm_listen,
    digits_hint,
    key_hint,
    phrasing,
    read_back,
)
from ivr.dialplan.schema import VOICEMAIL, DigitsSpec, ListenSpec, Plan, State
from ivr.dialplan.session import Session
from ivr.dialplan.templating import render
from ivr.dialplan.vocabulary import (
    CallAnswered,
    CallerHungUp,
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

# States passed through without waiting for the caller within one step. The validator
# rejects such loops; this bound keeps an unvalidated plan from spinning forever.
MAX_HOPS = 64

REPEAT = "repeat"
FAILED = "failed"


def step(plan: Plan, session: Session, event: Event) -> tuple[Session, list[Output]]:
    """Advance ``session`` by ``event``; returns the new session and what to do."""
    s = session.model_copy(deep=True)
    out: list[Output] = []
    if s.waiting == "done":
        out.append(Problem(s.state, f"{type(event).__name__} after the call ended: ignored"))
    elif isinstance(event, CallerHungUp):
        _end(s, "caller_hangup")
    elif isinstance(event, CallAnswered) and s.waiting == "answer":
        _answer(plan, s, event, out)
    elif isinstance(event, LookupFinished) and s.waiting == "lookup":
        if _count_turn(plan, s, out):
            _lookup_finished(plan, s, event, out)
    elif isinstance(event, KeysPressed | SpeechRecognized | NoInput) and s.waiting == "input":
        if _count_turn(plan, s, out):
            _input(plan, s, event, out)
    else:  # an event the call is not waiting for (a late or repeated webhook) changes nothing
        out.append(Problem(s.state, f"{type(event).__name__} while waiting for {s.waiting}"))
    return s, out


def _count_turn(plan: Plan, s: Session, out: list[Output]) -> bool:
    """Count one more exchange; past ``max_turns`` the call ends (a caller stuck in a loop)."""
    s.turns += 1
    if s.turns <= plan.max_turns:
        return True
    out.append(Problem(s.state, f"more than {plan.max_turns} turns: hanging up"))
    out.append(HangUp())
    _end(s, "max_turns")
    return False


def _end(s: Session, reason: str) -> None:
    s.waiting = "done"
    s.end_reason = reason


def _answer(plan: Plan, s: Session, event: CallAnswered, out: list[Output]) -> None:
    s.answered_by = event.answered_by
    if event.answered_by == "machine" and plan.direction == "outbound":
        if plan.voicemail:
            _say(plan, s, plan.voicemail, out)
        s.outcome = VOICEMAIL
        out += [SetOutcome(VOICEMAIL), HangUp()]
        _end(s, "voicemail")
        return
    _enter(plan, s, plan.start, "answered", out)


def _render(plan: Plan, s: Session, source: str, out: list[Output]) -> str:
    text, error = render(source, s.variables, plan.language)
    if error is not None:
        out.append(Problem(s.state, f"template {source!r}: {error}"))
    return text


def _say(plan: Plan, s: Session, source: str, out: list[Output]) -> None:
    if text := _render(plan, s, source, out):
        out.append(Say(text, plan.language))


def _prompt(plan: Plan, s: Session, state: State, out: list[Output]) -> None:
    if state.say is not None:
        _say(plan, s, state.say, out)
    elif state.play is not None:
        out.append(Play(state.play))


def _enter(plan: Plan, s: Session, name: str | None, reason: str, out: list[Output]) -> None:
    for _ in range(MAX_HOPS):
        state = plan.states.get(name) if name is not None else None
        if name is None or state is None:
            out.append(Problem(s.state, f"no state {name!r} to go to: hanging up"))
            out.append(HangUp())
            _end(s, "error")
            return
        out.append(Entered(name, s.state, reason))
        s.state, s.retries, s.confirming = name, 0, None
        if not _run_state(plan, s, state, out):
            return
        name, reason = state.next, "next"
    out.append(Problem(s.state, f"{MAX_HOPS} states in a row without waiting: hanging up"))
    out.append(HangUp())
    _end(s, "error")


def _run_state(plan: Plan, s: Session, state: State, out: list[Output]) -> bool:
    """Run a state's steps; True when the plan moves straight on to ``state.next``."""
    for name, source in state.set.items():
        s.variables[name] = _render(plan, s, source, out)
    _prompt(plan, s, state, out)
    if state.sms is not None and (text := _render(plan, s, state.sms, out)):
        out.append(SendSms(text))
    if state.outcome is not None:
        s.outcome = state.outcome
        out.append(SetOutcome(state.outcome))
    if state.lookup is not None:
        spec = state.lookup
        params = {k: _render(plan, s, v, out) for k, v in spec.params.items()}
        url = _render(plan, s, spec.url, out)
        out.append(Lookup(spec.method, url, params, spec.timeout))
        s.waiting = "lookup"
    elif state.listen is not None:
        out.append(Listen(s.state or "", state.listen, plan.language))
        s.waiting = "input"
    elif state.transfer is not None:
        out.append(Transfer(_render(plan, s, state.transfer, out)))
        _end(s, "transfer")
    elif state.hangup or state.next is None:
        out.append(HangUp())
        _end(s, "hangup")
    else:
        return True
    return False


def _current(plan: Plan, s: Session, out: list[Output]) -> State | None:
    """The state the call waits in; a session resumed against a plan without it hangs up."""
    state = plan.states.get(s.state or plan.start)
    if state is None:
        out.append(Problem(s.state, f"no state {s.state!r} in plan {plan.id!r}: hanging up"))
        out.append(HangUp())
        _end(s, "error")
    return state


def _lookup_finished(plan: Plan, s: Session, event: LookupFinished, out: list[Output]) -> None:
    if (state := _current(plan, s, out)) is None:
        return
    into = state.lookup.into if state.lookup is not None else "result"
    if event.status == "ok":
        s.variables[into] = dict(event.data)
    target = state.on.get(event.status)
    if target is None and event.status == "not_found":
        target = state.on.get("error")
    _enter(plan, s, target, f"lookup {event.status}", out)


def _input(
    plan: Plan, s: Session, event: KeysPressed | SpeechRecognized | NoInput, out: list[Output]
) -> None:
    if (state := _current(plan, s, out)) is None:
        return
    listen = state.listen
    if listen is None:  # a session resumed against a changed plan
        out.append(Problem(s.state, "input for a state that does not listen: ignored"))
        return
    if s.confirming is not None:
        _confirm_input(plan, s, state, listen, event, out)
    elif isinstance(event, NoInput):
        _retry(plan, s, state, listen, listen.no_input, "no input", out)
    elif listen.digits is not None:
        _digits_input(plan, s, state, listen, event, out)
    else:
        _intent_input(plan, s, state, listen, event, out)


def _heard(event: KeysPressed | SpeechRecognized) -> tuple[str, float]:
    if isinstance(event, KeysPressed):
        return event.keys, 1.0
    return event.text, event.confidence


def _digits_input(
    plan: Plan,
    s: Session,
    state: State,
    listen: ListenSpec,
    event: KeysPressed | SpeechRecognized,
    out: list[Output],
) -> None:
    spec = listen.digits
    assert spec is not None
    heard, confidence = _heard(event)
    if isinstance(event, KeysPressed):
        typed = heard.split(spec.finish_on)[0] if spec.finish_on else heard
        digits: str | None = "".join(ch for ch in typed if ch.isdecimal())
    elif confidence >= listen.min_confidence:
        digits = parse_spoken_digits(heard, plan.language)
    else:
        digits = None
    digits = (digits or "")[: spec.max]
    ok = len(digits) >= spec.min
    out.append(Understood(s.state or "", None, digits if ok else None, heard, confidence))
    if not ok:
        spoken = isinstance(event, SpeechRecognized)
        _retry(plan, s, state, listen, listen.no_match, "no match", out, hint=spoken)
    elif _needs_read_back(spec, event, confidence, plan.language):
        _read_back(plan, s, listen, digits, out)
    else:
        _accept(plan, s, state, listen, digits, out)


def _needs_read_back(
    spec: DigitsSpec, event: KeysPressed | SpeechRecognized, confidence: float, language: str
) -> bool:
    if spec.confirm == "never" or phrasing(language) is None:
        return False
    if spec.confirm == "always":
        return True
    return isinstance(event, SpeechRecognized) and confidence < spec.confirm_below


def _read_back(plan: Plan, s: Session, listen: ListenSpec, digits: str, out: list[Output]) -> None:
    """Say the digits back and wait for yes (1) or no (2); the session keeps the digits."""
    s.confirming = digits
    out.append(Say(read_back(digits, plan.language), plan.language))
    out.append(Listen(s.state or "", confirm_listen(listen, plan.language), plan.language))


def _accept(
    plan: Plan, s: Session, state: State, listen: ListenSpec, digits: str, out: list[Output]
) -> None:
    s.variables[listen.into] = digits
    _enter(plan, s, state.next, f"digits {digits}", out)


def _confirm_input(
    plan: Plan,
    s: Session,
    state: State,
    listen: ListenSpec,
    event: KeysPressed | SpeechRecognized | NoInput,
    out: list[Output],
) -> None:
    """The caller's answer to a read-back: yes accepts the digits, no asks for them again,
    anything else asks the question again (each no or unclear answer uses up a retry)."""
    digits = s.confirming or ""
    if isinstance(event, NoInput):
        _retry(plan, s, state, listen, listen.no_input, "no input", out)
        return
    answer = _match(confirm_listen(listen, plan.language), event, s, out)
    if answer == CONFIRMED:
        _accept(plan, s, state, listen, digits, out)
    elif answer == REJECTED:
        s.confirming = None
        _retry(plan, s, state, listen, None, "digits rejected", out)
    else:
        _retry(plan, s, state, listen, listen.no_match, "no match", out)


def _intent_input(
    plan: Plan,
    s: Session,
    state: State,
    listen: ListenSpec,
    event: KeysPressed | SpeechRecognized,
    out: list[Output],
) -> None:
    intent = _match(listen, event, s, out)
    if intent is None:
        spoken = isinstance(event, SpeechRecognized)
        _retry(plan, s, state, listen, listen.no_match, "no match", out, hint=spoken)
    elif intent in state.on:
        _enter(plan, s, state.on[intent], f"intent {intent}", out)
    else:  # only ``repeat`` may be left unmapped (the validator enforces it): play again
        _prompt(plan, s, state, out)
        out.append(Listen(s.state or "", listen, plan.language))


def _match(
    listen: ListenSpec, event: KeysPressed | SpeechRecognized, s: Session, out: list[Output]
) -> str | None:
    """The intent of ``listen`` that ``event`` means (noted as Understood), or None."""
    heard, confidence = _heard(event)
    if isinstance(event, KeysPressed):
        intent = match_keys(listen.intents, heard)
    elif confidence >= listen.min_confidence:
        intent = match_speech(listen.intents, heard)
    else:
        intent = None
    out.append(Understood(s.state or "", intent, None, heard, confidence))
    return intent


def _say_key_hint(plan: Plan, s: Session, listen: ListenSpec, out: list[Output]) -> None:
    """After a spoken answer was turned away: remind the caller of the keypad."""
    if listen.key_hint is not None:
        _say(plan, s, listen.key_hint, out)
        return
    if listen.digits is not None:
        hint = digits_hint(plan.language)
    else:
        hint = key_hint(listen.intents, plan.language)
    if hint:
        out.append(Say(hint, plan.language))


def _retry(
    plan: Plan,
    s: Session,
    state: State,
    listen: ListenSpec,
    apology: str | None,
    why: str,
    out: list[Output],
    *,
    hint: bool = False,
) -> None:
    """Ask again (the read-back question while one is pending), or go to ``failed``."""
    if s.retries < listen.retries:
        s.retries += 1
        if apology:
            _say(plan, s, apology, out)
        if s.confirming is not None:
            _read_back(plan, s, listen, s.confirming, out)
            return
        if hint:
            _say_key_hint(plan, s, listen, out)
        _prompt(plan, s, state, out)
        out.append(Listen(s.state or "", listen, plan.language))
        return
    _enter(plan, s, state.on.get(FAILED), f"{FAILED} after {why}", out)


def pending_listen(plan: Plan, session: Session) -> Listen | None:
    """What the call waits for now, as the last step's ``Listen`` asked (for runtimes that
    rebuild it from the stored session): the read-back's yes/no while one is pending."""
    state = plan.states.get(session.state or "")
    if state is None or state.listen is None or session.waiting != "input":
        return None
    if session.confirming is not None:
        spec = confirm_listen(state.listen, plan.language)
        return Listen(session.state or "", spec, plan.language)
    return Listen(session.state or "", state.listen, plan.language)
