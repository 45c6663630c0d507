"""Calls as the server runs them: start, answer, continue, end — each turn committed first.

Every webhook that moves a dial plan goes through ``_advance``: step the engine (lookups
included), have the provider's dialect write the response (``CallDialect``: TwiML for
Twilio), then one transaction that advances the call's turn *only if it is still the turn
the webhook was for*, appends the event log and records outgoing SMS. A repeated delivery of
the same webhook loses that race and gets the stored response of the turn instead, so the
plan never advances twice. SMS go to the provider after the commit.

The runtime knows no provider: webhooks are parsed by the provider's routes into the calls
below, and what the provider is answered is an opaque string from the dialect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.calls.dialect import CallDialect
from ivr.calls.live_prompts import prompts_entry
from ivr.calls.recognition import PendingRecognitions
from ivr.calls.services import Services
from ivr.calls.turn_audio import TurnAudio, render_first_prompts
from ivr.calls.turns import Turn, run_turn
from ivr.dialplan.engine import pending_listen
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session, new_session
from ivr.dialplan.variables import coerce_variables
from ivr.dialplan.vocabulary import (
    AnsweredBy,
    CallAnswered,
    CallerHungUp,
    Event,
    KeysPressed,
    Listen,
    NoInput,
)
from ivr.store import (
    FINAL_CALL_STATUSES,
    CallChanges,
    CallRecord,
    CallStatus,
    Direction,
    SmsRecord,
    SmsStatus,
    Transaction,
    draft_inbound_call,
)
from ivr.telephony.provider import AmbiguousCreate, ProviderError

log = logging.getLogger(__name__)

NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
# Keep-alives (about a second of silence each) a recording may take before it counts as no input.
MAX_RECOGNITION_WAITS = 10


class UnknownCall(LookupError):
    """A webhook names a call reference this server never issued (or has forgotten)."""


class WrongCall(ValueError):
    """A webhook's CallSid or turn does not fit the call its URL names; it changes nothing."""


class _Replay(Exception):
    """The webhook is for a turn already taken: answer with what that turn answered."""

    def __init__(self, response: str) -> None:
        self.response = response


@dataclass(frozen=True)
class OpenTurn:
    """A call at the turn someone is about to take (see :meth:`CallService.open_turn`)."""

    call: CallRecord
    plan: Plan
    session: Session


class CallService:
    def __init__(self, services: Services, dialect: CallDialect) -> None:
        self.s = services
        self.dialect = dialect
        self._background: set[asyncio.Task[None]] = set()
        self.recognitions = PendingRecognitions()
        # Called with a call's reference once it reached a final status (the outbound
        # scheduler listens, to retry, send the fallback SMS or record the outcome).
        self.ended_listeners: list[Callable[[str], Awaitable[None]]] = []

    # -- starting calls ---------------------------------------------------------------------

    def _new_session(self, plan: Plan, given: dict[str, Any], caller: str, called: str) -> Session:
        configured = self.s.settings.plan_variables.get(plan.id, {})
        variables = coerce_variables(plan, {**configured, **given})
        return new_session(plan.id, {**variables, "caller": caller, "called": called})

    async def start_inbound(self, call_sid: str, caller: str, called: str) -> str:
        plan = self.s.plans.by_number(called)
        if plan is None:
            log.warning(
                "incoming call %s to %s: no inbound plan answers that number", call_sid, called
            )
            return self.dialect.say_and_hang_up(NOT_IN_SERVICE, "en-US")
        async with self.s.store.read() as tx:
            known = await tx.calls.get_by_sid(call_sid)
        if known is not None:  # a repeated delivery (or a call left at turn 0 by a crash)
            if known.turn > 0:
                return known.last_response or self.dialect.gone()
            session = Session.from_json(known.session_json)
            return await self._advance(known, plan, session, CallAnswered())
        # The call is written with its first turn, in one transaction (two deliveries at once:
        # the first to commit wins, the other answers with its stored response).
        session = self._new_session(plan, {}, caller, called)
        draft = draft_inbound_call(
            provider_sid=call_sid,
            plan_id=plan.id,
            plan_hash=self.s.hashes.get(plan.id, ""),
            from_number=caller,
            to_number=called,
            session_json=session.to_json(),
        )
        return await self._advance(draft, plan, session, CallAnswered(), new=True)

    async def record_outbound_call(
        self,
        tx: Transaction,
        to: str,
        plan_id: str,
        variables: dict[str, Any],
        notification_id: str | None = None,
    ) -> CallRecord:
        """Write the call (status queued) inside the caller's transaction, before any dialing."""
        plan = self.s.plan(plan_id)
        if plan is None or plan.direction != "outbound":
            raise ValueError(f"no outbound plan {plan_id!r}")
        caller_id = self.s.settings.caller_id
        session = self._new_session(plan, variables, to, caller_id)
        return await tx.calls.create(
            direction=Direction.OUTBOUND,
            plan_id=plan.id,
            plan_hash=self.s.hashes.get(plan.id, ""),
            from_number=caller_id,
            to_number=to,
            session_json=session.to_json(),
            notification_id=notification_id,
        )

    async def dial(self, call: CallRecord) -> CallRecord:
        """Ask the provider to place a recorded call; a refusal ends the call as failed.

        Its first prompts are rendered first, so the answer webhook finds them cached."""
        if (plan := self.s.plan(call.plan_id)) is not None:
            await render_first_prompts(self.s, plan, Session.from_json(call.session_json))
        try:
            info = await self.s.provider.place_call(
                to=call.to_number,
                from_number=call.from_number,
                answer_url=self.dialect.answer_url(call.id),
                status_url=self.dialect.status_url(call.id),
                ring_timeout=round(self.s.settings.ring_timeout),
            )
        except AmbiguousCreate as exc:
            # The provider may have the call: its status callback (carrying our reference)
            # will tell us the sid. Dialing again could ring the person twice.
            await self._log(call.id, "error", {"place_call": str(exc), "ambiguous": True})
            return call
        except ProviderError as exc:
            async with self.s.store.transaction() as tx:
                await tx.calls.update_status(CallStatus.FAILED, ref=call.id)
                await tx.events.append(call.id, "error", {"place_call": str(exc)})
            await self._call_ended(call.id)
            return call
        async with self.s.store.transaction() as tx:
            await tx.calls.set_sid(call.id, info.sid)
            await tx.calls.update_status(info.status, ref=call.id)
            await tx.events.append(call.id, "placed", {"sid": info.sid, "status": info.status})
            return await tx.calls.get(call.id) or call

    async def place_call(
        self, to: str, plan_id: str, variables: dict[str, Any], notification_id: str | None = None
    ) -> CallRecord:
        """Record an outbound call, then dial it (never the other way round)."""
        async with self.s.store.transaction() as tx:
            call = await self.record_outbound_call(tx, to, plan_id, variables, notification_id)
        return await self.dial(call)

    async def answer_outbound(self, ref: str, call_sid: str, answered_by: AnsweredBy) -> str:
        async with self.s.store.transaction() as tx:
            call = await tx.calls.get(ref)
            if call is None:
                raise UnknownCall(ref)
            if not await tx.calls.set_sid(ref, call_sid):
                raise WrongCall(f"CallSid: {call_sid} is not the call {ref} was placed as")
            await tx.calls.update_status(CallStatus.IN_PROGRESS, ref=ref, answered_by=answered_by)
        if call.turn > 0:
            return call.last_response or self.dialect.gone()
        plan = self._plan_of(call)
        session = Session.from_json(call.session_json)
        return await self._advance(call, plan, session, CallAnswered(answered_by))

    # -- continuing calls -------------------------------------------------------------------

    async def check_webhook(self, ref: str, call_sid: str, turn: int) -> CallRecord:
        """UnknownCall or WrongCall unless call ``ref`` is ``call_sid`` and has reached ``turn``.

        An earlier turn is a repeated delivery (answered from the store); a later one was never
        in any URL this server wrote. Returns the call as read, for the handler to go on with
        (``known=``): one read per webhook, not two.
        """
        async with self.s.store.read() as tx:
            call = await tx.calls.get(ref)
        if call is None:
            raise UnknownCall(ref)
        if call.provider_sid != call_sid:
            raise WrongCall(f"CallSid: {call_sid} is not the call {ref}")
        if turn > call.turn:
            raise WrongCall(f"turn: {turn} is ahead of call {ref}, which is at turn {call.turn}")
        return call

    async def _load(
        self, ref: str, turn: int, known: CallRecord | None = None
    ) -> tuple[CallRecord, Plan, Session]:
        """The call at ``turn``, or _Replay. ``known`` is the call as this webhook already read
        it: if another delivery moved the call on since, the commit's conditional UPDATE loses
        and answers with the stored turn, as a fresh read would have."""
        call = known
        if call is None or call.id != ref:
            async with self.s.store.read() as tx:
                call = await tx.calls.get(ref)
        if call is None:
            raise UnknownCall(ref)
        if turn != call.turn or call.last_response is None:
            raise _Replay(call.last_response or self.dialect.gone())
        session = Session.from_json(call.session_json)
        if session.ended:
            raise _Replay(self.dialect.gone())
        return call, self._plan_of(call), session

    async def open_turn(self, ref: str, turn: int) -> OpenTurn | None:
        """Call ``ref`` at ``turn``, for a runtime that takes turns itself (a media stream);
        None when that turn is already taken, the call is over or unknown."""
        try:
            call, plan, session = await self._load(ref, turn)
        except (_Replay, UnknownCall):
            return None
        return OpenTurn(call, plan, session)

    def _plan_of(self, call: CallRecord) -> Plan:
        plan = self.s.plan(call.plan_id)
        if plan is None:
            raise UnknownCall(f"{call.id}: plan {call.plan_id} is no longer loaded")
        return plan

    def listening(self, plan: Plan, session: Session) -> Listen | None:
        return pending_listen(plan, session)

    async def on_keys(
        self, ref: str, turn: int, keys: str, first: bool, known: CallRecord | None = None
    ) -> str:
        """Keys from a Gather (or a key that ended a recording)."""
        try:
            call, plan, session = await self._load(ref, turn, known)
        except _Replay as replay:
            return replay.response
        listen = self.listening(plan, session)
        speech = self.s.speech_for(plan)
        more = None
        if first and listen is not None:
            more = self.dialect.more_digits(call.id, call.turn + 1, listen, keys, speech=speech)
        if more is not None:
            return await self.commit(call, session, more, [("KeysTyped", {"keys": keys})], [])
        return await self._advance(call, plan, session, KeysPressed(keys) if keys else NoInput())

    async def on_event(
        self, ref: str, turn: int, event: Event, known: CallRecord | None = None
    ) -> str:
        """No input, or the caller hung up during a recording."""
        try:
            call, plan, session = await self._load(ref, turn, known)
        except _Replay as replay:
            return replay.response
        return await self._advance(call, plan, session, event)

    async def on_recording(
        self,
        ref: str,
        turn: int,
        recording_url: str,
        recording_sid: str,
        waits: int = 0,
        known: CallRecord | None = None,
    ) -> str:
        """A recording to recognize; ``waits`` counts the keep-alives answered for it so far."""
        try:
            call, plan, session = await self._load(ref, turn, known)
        except _Replay as replay:
            return replay.response
        key = (ref, turn)
        task = self.recognitions.start(
            key, lambda: self._recognize(call, plan, session, recording_url)
        )
        if await self.recognitions.finished(task, self.s.settings.recognition_budget):
            event = task.result()
        elif waits < MAX_RECOGNITION_WAITS:
            await self._log(call.id, "recognition_wait", {"waits": waits + 1})
            return self.dialect.wait(ref, turn, recording_url, recording_sid, waits + 1)
        else:
            await self._log(call.id, "error", {"recognition": "gave up waiting", "waits": waits})
            event = NoInput()
        self.recognitions.forget(key)
        self.in_background(self._forget_recording(call.id, recording_sid))
        return await self._advance(call, plan, session, event)

    async def _recognize(
        self, call: CallRecord, plan: Plan, session: Session, recording_url: str
    ) -> Event:
        listen = self.listening(plan, session)
        recognizer = self.s.recognizer
        if listen is None or recognizer is None or not recognizer.supports(plan.language):
            return NoInput()
        try:
            wav = await self.s.provider.fetch_recording(recording_url)
            return await recognizer.recognize(wav, listen)
        except (ProviderError, ValueError) as exc:
            await self._log(call.id, "error", {"recording": recording_url, "problem": str(exc)})
            return NoInput()

    async def _forget_recording(self, ref: str, recording_sid: str) -> None:
        if self.s.settings.recording_retention == "keep":
            return
        try:
            await self.s.provider.delete_recording(recording_sid)
        except ProviderError as exc:
            await self._log(ref, "error", {"delete_recording": recording_sid, "problem": str(exc)})

    # -- one turn ---------------------------------------------------------------------------

    async def take_turn(
        self, plan: Plan, session: Session, event: Event, audio: TurnAudio | None = None
    ) -> Turn:
        """Step the plan with ``event``, lookups included (prompts start rendering in
        ``audio`` as soon as the engine emits them). Nothing is stored: see :meth:`commit`."""
        emitted = audio.start if audio is not None else None
        return await run_turn(plan, session, event, self.s.lookup, emitted)

    async def _advance(
        self, call: CallRecord, plan: Plan, session: Session, event: Event, new: bool = False
    ) -> str:
        """Take a turn and commit it; ``new``: ``call`` is a draft, written with the turn."""
        audio = TurnAudio(self.s)
        turn = await self.take_turn(plan, session, event, audio)
        paths = await audio.paths(turn)
        number = call.turn + 1
        if self.dialect.streaming and turn.outputs and isinstance(turn.outputs[-1], Listen):
            # The stream plays the turn's prompts from the event log (ivr/calls/live_calls.py).
            turn.log.append(prompts_entry(number, plan, session, turn))
            response = self.dialect.connect_stream(call.id, number)
        else:
            speech = self.s.speech_for(plan)
            response = self.dialect.turn(call.id, number, turn.outputs, paths, speech=speech)
        return await self.commit(call, turn.session, response, turn.log, turn.sms, new)

    async def commit(
        self,
        call: CallRecord,
        session: Session,
        response: str,
        entries: Sequence[tuple[str, dict[str, Any]]],
        sms: Sequence[str],
        new: bool = False,
    ) -> str:
        """Store the turn taken from ``call`` (its session, the provider's ``response``, the
        log ``entries``, the ``sms`` to send) if ``call`` is still at the turn it was loaded
        at; returns ``response``, or what the turn's winner stored (a concurrent repeat)."""
        person, ours = (call.from_number, call.to_number)
        if call.direction == Direction.OUTBOUND:
            person, ours = ours, person
        changes: CallChanges = {"outcome": session.outcome, "answered_by": session.answered_by}
        async with self.s.store.transaction() as tx:
            if new:
                won = await tx.calls.insert_first_turn(call, session.to_json(), response, **changes)
            else:
                won = await tx.calls.advance(
                    call.id, call.turn, session.to_json(), response, **changes
                )
            if not won:
                latest = await (
                    tx.calls.get_by_sid(call.provider_sid or "") if new else tx.calls.get(call.id)
                )
                return (latest.last_response if latest else None) or self.dialect.gone()
            await tx.events.append_many(call.id, entries)
            messages = [
                await tx.sms.create(
                    direction=Direction.OUTBOUND,
                    from_number=ours,
                    to_number=person,
                    body=text,
                    call_ref=call.id,
                    notification_id=call.notification_id,
                    status=SmsStatus.SCHEDULED,
                )
                for text in sms
            ]
        for message in messages:
            self.in_background(self.send_recorded_sms(message))
        return response

    # -- SMS, status, housekeeping ----------------------------------------------------------

    async def send_recorded_sms(self, message: SmsRecord) -> None:
        """Send a message recorded ``scheduled``, unless someone already took it.

        Taking it (scheduled -> queued) is committed before the provider is asked: a crash
        before that leaves it ``scheduled`` for the scheduler's reconcile to send; after it,
        the message may have reached the provider and is never sent again (at most once).
        """
        async with self.s.store.transaction() as tx:
            mine = await tx.sms.update_status(SmsStatus.QUEUED, ref=message.id)
        if mine:
            await self.send_sms(message)

    async def send_sms(self, message: SmsRecord) -> None:
        """Hand a recorded message to the provider and record its sid (or why it failed)."""
        status_url = self.dialect.sms_status_url(message.id)
        try:
            info = await self.s.provider.send_sms(
                to=message.to_number,
                from_number=message.from_number,
                body=message.body,
                status_url=status_url,
            )
        except AmbiguousCreate:
            return  # the status callback carries our reference and will bring the sid
        except ProviderError as exc:
            async with self.s.store.transaction() as tx:
                await tx.sms.update_status(SmsStatus.FAILED, ref=message.id, error=str(exc))
            return
        async with self.s.store.transaction() as tx:
            await tx.sms.set_sid(message.id, info.sid)

    async def on_status(
        self,
        ref: str | None,
        call_sid: str,
        status: str,
        answered_by: str | None,
        duration: int | None,
    ) -> bool:
        async with self.s.store.transaction() as tx:
            call = await (tx.calls.get(ref) if ref else tx.calls.get_by_sid(call_sid))
            if call is None:
                raise UnknownCall(ref or call_sid)
            if not await tx.calls.set_sid(call.id, call_sid):
                raise WrongCall(f"CallSid: {call_sid} is not the call {call.id}")
            moved = await tx.calls.update_status(
                status, ref=call.id, answered_by=answered_by, duration_seconds=duration
            )
            await tx.events.append(call.id, "status", {"status": status, "moved": moved})
        if moved and status in FINAL_CALL_STATUSES:
            await self._call_ended(call.id)
        return moved

    async def _call_ended(self, ref: str) -> None:
        await self._hung_up(ref)
        for listener in self.ended_listeners:
            await listener(ref)

    async def _hung_up(self, ref: str) -> None:
        """The call is over at the provider: a plan still waiting for the caller ends too.

        Twilio requests no action URL when the caller hangs up mid-prompt or mid-listen; the
        final status callback (of any provider) is the only word of it.
        """
        async with self.s.store.read() as tx:
            call = await tx.calls.get(ref)
        if call is None or (plan := self.s.plan(call.plan_id)) is None:
            return
        session = Session.from_json(call.session_json)
        if session.ended:
            return
        turn = await self.take_turn(plan, session, CallerHungUp())
        await self.commit(call, turn.session, self.dialect.gone(), turn.log, turn.sms)

    async def _log(self, ref: str, kind: str, data: dict[str, Any]) -> None:
        async with self.s.store.transaction() as tx:
            await tx.events.append(ref, kind, data)

    def in_background(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for SMS sends and recording deletions still under way (at shutdown, in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
