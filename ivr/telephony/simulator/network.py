"""A Twilio-compatible telephone network in one process, spoken to over real HTTP.

The application cannot tell it from Twilio: it places calls and sends SMS through the REST
API (:mod:`ivr.telephony.simulator.api`), receives signed webhooks and status callbacks,
and its TwiML is carried out against scripted callers (:class:`Persona`). Tests and
``ivr demo`` read back what happened from :class:`CallRecord` transcripts and the logs.

Typical use::

    simulator = Simulator(account_sid, auth_token, audio_dirs=[fsdd])
    simulator.expect("+12025550123", Persona.from_scenario(scenario))
    api_base = await simulator.start()          # or mount simulator.rest_app()
    ...  # the application posts Calls.json to api_base
    call = await simulator.wait_for_call(sid)
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from ivr.telephony.provider import CallStatus
from ivr.telephony.simulator.api import build_rest_app
from ivr.telephony.simulator.call import CallEnded, Jump, TwimlInterpreter
from ivr.telephony.simulator.http import WebhookClient
from ivr.telephony.simulator.persona import CallerVoice, Persona
from ivr.telephony.simulator.sms import SmsCenter, WebhookError
from ivr.telephony.simulator.state import (
    ApiRequest,
    CallRecord,
    MessageRecord,
    RecordingStore,
    SimulatorSettings,
    WebhookExchange,
    new_sid,
    rfc2822,
    utcnow,
    voice_params,
    whole_seconds,
)

__all__ = [
    "ApiRequest",
    "CallRecord",
    "MessageRecord",
    "Persona",
    "Simulator",
    "SimulatorSettings",
    "WebhookError",
]

logger = logging.getLogger(__name__)

# SIP answers Twilio reports with a call's final status callback.
_SIP_CODES = {
    "completed": "200",
    "busy": "486",
    "no-answer": "487",
    "failed": "404",
    "canceled": "487",
}


class Simulator:
    """The simulated provider: REST API, personas, calls, messages, recordings, webhooks."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base: str | None = None,
        default_persona: Persona | None = None,
        audio_dirs: Sequence[Path] = (),
        settings: SimulatorSettings | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_base = api_base.rstrip("/") if api_base else None
        self.default_persona = default_persona or Persona(when_script_ends="stay-silent")
        self.settings = settings or SimulatorSettings()
        self.voice = CallerVoice(audio_dirs)
        self.client = WebhookClient(auth_token, self.settings.webhook_timeout)
        self.calls: dict[str, CallRecord] = {}
        self.sms = SmsCenter(account_sid, self.client)
        self.recordings = RecordingStore()
        self.api_requests: list[ApiRequest] = []  # every REST request, in order
        self._expected: defaultdict[str, deque[Persona]] = defaultdict(deque)
        self._assigned: dict[str, Persona] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    # -- who answers ---------------------------------------------------------------------

    def expect(self, number: str, *personas: Persona) -> None:
        """The next calls to ``number`` are answered by these personas, one per call."""
        self._expected[number].extend(personas)

    def assign(self, number: str, persona: Persona) -> None:
        """Every call to ``number`` (once the expected ones are used up) meets ``persona``."""
        self._assigned[number] = persona

    def persona_for(self, number: str) -> Persona:
        """Who picks up ``number`` now: expected, else assigned, else the default persona."""
        queue = self._expected.get(number)
        if queue:
            return queue.popleft()
        return self._assigned.get(number, self.default_persona)

    def sms_fails(
        self,
        number: str,
        status: Literal["undelivered", "failed"] = "undelivered",
        error_code: int = 30003,
    ) -> None:
        """SMS to ``number`` end ``undelivered`` (30003: unreachable) or ``failed``."""
        self.sms.fail(number, status, error_code)

    # -- the log -------------------------------------------------------------------------

    @property
    def webhooks(self) -> list[WebhookExchange]:
        """Every request sent to the application, in order, with its answer."""
        return self.client.exchanges

    @property
    def messages(self) -> dict[str, MessageRecord]:
        """Every SMS: sent through the API, received by the application, and its replies."""
        return self.sms.messages

    def calls_to(self, number: str) -> list[CallRecord]:
        return [call for call in self.calls.values() if call.to == number]

    # -- outbound calls (the REST API calls these) ---------------------------------------

    def place_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        api_base: str,
        method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: Iterable[str] = ("completed",),
        machine_detection: str | None = None,
        timeout: int = 60,
        form: Sequence[tuple[str, str]] = (),
    ) -> CallRecord:
        """Queue an outbound call (already validated) and start dialing it in the background."""
        call = CallRecord(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            direction="outbound-api",
            from_=from_,
            to=to,
            url=url,
            api_base=self.api_base or api_base.rstrip("/"),
            method=method,
            form=list(form),
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            status_callback_events=frozenset(status_callback_events),
            machine_detection=machine_detection.lower() if machine_detection else None,
            timeout=timeout,
        )
        self.calls[call.sid] = call
        self._spawn(self._run_call(call, self.persona_for(to), None), call)
        return call

    def end_call(self, call: CallRecord, status: Literal["completed", "canceled"]) -> None:
        """A REST update ``Status=completed|canceled``: the call ends at its next step."""
        if not call.final:
            call.end_requested = status

    # -- inbound calls -------------------------------------------------------------------

    def start_incoming_call(
        self,
        from_: str,
        to: str,
        persona: Persona,
        voice_url: str,
        *,
        method: str = "POST",
        status_callback: str | None = None,
        status_callback_events: Iterable[str] = ("completed",),
    ) -> CallRecord:
        """Ring the application's number; the call runs in the background."""
        if self.api_base is None:
            raise RuntimeError("the simulator's api_base is unknown: start() it or pass api_base")
        call = CallRecord(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            direction="inbound",
            from_=from_,
            to=to,
            url=voice_url,
            api_base=self.api_base,
            method=method.upper(),
            status_callback=status_callback,
            status_callback_events=frozenset(status_callback_events),
        )
        self.calls[call.sid] = call
        self._spawn(self._run_call(call, persona, persona), call)
        return call

    async def incoming_call(
        self,
        from_: str,
        to: str,
        persona: Persona,
        voice_url: str,
        **options: Any,
    ) -> CallRecord:
        """Ring the application's number as ``persona`` and return the finished call."""
        call = self.start_incoming_call(from_, to, persona, voice_url, **options)
        return await self.wait_for_call(call.sid)

    # -- the life of a call --------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], call: CallRecord | None = None) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if call is not None:
            task.add_done_callback(lambda _task: call.done.set())

    async def _wait(self, call: CallRecord, seconds: float) -> bool:
        """Let ``seconds`` pass before the answer; False when the call was ended meanwhile."""
        await asyncio.sleep(seconds * self.settings.pace)
        return call.end_requested is None

    async def _run_call(self, call: CallRecord, persona: Persona, caller: Persona | None) -> None:
        """Dial (outbound) or ring (inbound), run the TwiML, then report the final status."""
        try:
            if caller is None:
                ended = await self._dial(call, persona)
            else:
                call.status = "ringing"
                await self._status(call, "initiated")
                ended = await self._interpreter(call, caller).run(
                    Jump(call.url, call.method, {}, "voice")
                )
        except asyncio.CancelledError:
            # The simulator is shutting down: no callbacks any more, just a final record.
            call.status = "completed" if call.status == "in-progress" else "canceled"
            call.end_reason, call.end_time = "simulator closed", utcnow()
            raise
        except Exception as exc:
            logger.exception("simulated call %s crashed", call.sid)
            call.log("error", f"simulator failure: {exc!r}")
            ended = CallEnded("error", "failed" if call.status != "in-progress" else "completed")
        await self._finish(call, ended.status, ended.reason)

    async def _dial(self, call: CallRecord, persona: Persona) -> CallEnded:
        call.status = "initiated"
        await self._status(call, "initiated")
        if persona.answer in ("failed", "busy"):
            return CallEnded(persona.answer, persona.answer)
        call.status = "ringing"
        await self._status(call, "ringing")
        if not persona.picks_up or persona.ring_seconds >= call.timeout:
            if not await self._wait(call, call.timeout):
                return CallEnded("api", "canceled")
            return CallEnded("no-answer", "no-answer")
        if not await self._wait(call, persona.ring_seconds):
            return CallEnded("api", "canceled")
        answered_by = persona.answered_by(call.machine_detection)
        extra: dict[str, str] = {}
        if answered_by is not None:
            # Detection listens before the application hears of the call: a whole greeting
            # with DetectMessageEnd, a few seconds to recognise a person.
            waits = call.machine_detection == "detectmessageend" and answered_by != "human"
            detecting = persona.greeting_seconds if waits else min(persona.greeting_seconds, 2.5)
            await asyncio.sleep(detecting * self.settings.pace)
            call.elapsed += detecting  # the call is connected (and billed) while detecting
            call.answered_by = answered_by
            extra = {
                "AnsweredBy": answered_by,
                "MachineDetectionDuration": str(int(detecting * 1000)),
            }
        await self._answer(call)
        return await self._interpreter(call, persona).run(
            Jump(call.url, call.method, extra, "voice")
        )

    def _interpreter(self, call: CallRecord, persona: Persona) -> TwimlInterpreter:
        return TwimlInterpreter(
            call,
            persona,
            self.client,
            self.voice,
            self.recordings,
            self.settings,
            lambda: self._answer(call),
        )

    async def _answer(self, call: CallRecord) -> None:
        call.status = "in-progress"
        call.start_time = utcnow()
        await self._status(call, "answered")

    async def _finish(self, call: CallRecord, status: CallStatus, reason: str) -> None:
        if call.final:
            return
        answered = call.status == "in-progress"
        if call.end_requested is not None and not answered:
            status = "canceled"  # hung up through the REST API before anyone picked up
        call.status = status
        call.end_reason = reason
        call.end_time = utcnow()
        call.duration = whole_seconds(call.elapsed) if answered else 0
        await self._status(call, "completed")

    async def _status(self, call: CallRecord, event: str) -> None:
        """Send a call-progress status callback, if the application asked for ``event``."""
        if not call.status_callback or event not in call.status_callback_events:
            return
        params = {
            **voice_params(call, call.status),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(call.status_callbacks_sent),
            "Timestamp": rfc2822(utcnow()) or "",
        }
        if call.answered_by is not None:
            params["AnsweredBy"] = call.answered_by
        if event == "completed":
            params["CallDuration"] = str(call.duration or 0)
            params["SipResponseCode"] = _SIP_CODES.get(call.status, "200")
        call.status_callbacks_sent += 1
        exchange, _ = await self.client.send(
            "status", call.status_callback_method, call.status_callback, params, call.sid
        )
        # Twilio ignores the answer's body but logs anything but a 2xx in the account's
        # debugger as error 11200 (HTTP retrieval failure).
        if exchange.status is None or not 200 <= exchange.status < 300:
            answer = exchange.error or f"HTTP {exchange.status}"
            call.log("error", f"11200 HTTP retrieval failure: status callback answered {answer}")

    # -- SMS -----------------------------------------------------------------------------

    def send_message(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        status_callback: str | None = None,
        form: Sequence[tuple[str, str]] = (),
    ) -> MessageRecord:
        """Accept an outbound SMS (already validated); delivery reports follow."""
        message = self.sms.accept(to, from_, body, status_callback, form)
        self._spawn(self.sms.deliver(message, self.settings.pace))
        return message

    async def incoming_sms(
        self, from_: str, to: str, body: str, sms_url: str, method: str = "POST"
    ) -> list[str]:
        """Deliver an SMS to the application; returns the texts of its ``<Message>`` replies.

        Raises :class:`WebhookError` when the application does not answer 2xx with TwiML.
        """
        return await self.sms.receive(from_, to, body, sms_url, method)

    # -- waiting -------------------------------------------------------------------------

    async def wait_for_call(self, sid: str, timeout: float = 60.0) -> CallRecord:
        """The call once its final status callback went out (KeyError for an unknown sid)."""
        call = self.calls[sid]
        await asyncio.wait_for(call.done.wait(), timeout)
        return call

    async def wait_idle(self, timeout: float = 60.0) -> None:
        """Until every call and delivery report in flight has finished."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    # -- serving -------------------------------------------------------------------------

    def rest_app(self) -> web.Application:
        """The REST API as an aiohttp application; mount it with ``add_subapp(prefix, ...)``."""
        return build_rest_app(self)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the REST API on its own port; returns (and remembers) its ``api_base``."""
        self._runner = web.AppRunner(self.rest_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]  # port 0 asks the system for a free one
        base = f"http://{host}:{bound_port}"
        self.api_base = self.api_base or base
        return base

    async def stop(self) -> None:
        """Hang up every call in flight (no more webhooks) and close the HTTP client.

        The mounted REST app runs this at cleanup; it is safe to call more than once.
        """
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await self.client.close()

    async def close(self) -> None:
        """:meth:`stop`, and stop serving the standalone REST API started by :meth:`start`."""
        runner, self._runner = self._runner, None
        await self.stop()
        if runner is not None:
            await runner.cleanup()
