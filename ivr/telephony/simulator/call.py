"""Executing TwiML the way Twilio does, for one answered (or ringing inbound) call.

The interpreter requests a document, runs its verbs in order, and follows the URL a verb
hands control to (``<Gather>``/``<Record>`` action, ``<Redirect>``). The caller's side is the
persona's script: key presses go to ``<Gather>`` (interrupting its nested prompts) and end
``<Record>``; speech, audio files and silence become the recording. Time is simulated: each
prompt, pause and timeout advances the call's clock, optionally slept in real time.
"""

from __future__ import annotations

import asyncio
import math
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from ivr.speech.audio import TELEPHONY_RATE, duration_seconds, rms
from ivr.telephony.provider import CallStatus
from ivr.telephony.simulator.http import PromptAudio, WebhookClient
from ivr.telephony.simulator.persona import (
    KEY_GAP,
    RECORDING_LEAD_IN,
    Caller,
    CallerVoice,
    Persona,
    silence,
)
from ivr.telephony.simulator.state import (
    CallRecord,
    EntryKind,
    RecordingStore,
    SimulatorSettings,
    new_sid,
    voice_params,
    whole_seconds,
)
from ivr.telephony.simulator.stream import MediaStream

# Valid TwiML the simulator does not act out: logged as an error, then the next verb runs.
_QUEUES_AND_BRIDGES = {"Enqueue", "Leave", "Queue", "Refer"}
_MEDIA_AND_PAYMENTS = {"Echo", "Pay", "Prompt", "Sms", "Start", "Stop"}
NOT_SIMULATED = frozenset(_QUEUES_AND_BRIDGES | _MEDIA_AND_PAYMENTS)
SPEECH_WORDS_PER_SECOND = 2.5  # how long a <Say> takes, roughly, at a telephone pace
SILENCE_RMS = 40.0  # below this level a recording holds nothing but silence


class CallEnded(Exception):
    """Unwinds the interpreter: the call is over, by ``reason``, with final ``status``."""

    def __init__(self, reason: str, status: CallStatus = "completed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status: CallStatus = status


@dataclass(frozen=True)
class Jump:
    """The next document to request: a verb handed control to ``url``."""

    url: str
    method: str
    params: dict[str, str]
    purpose: str  # voice, action, redirect


class TwimlInterpreter:
    """Runs one call's TwiML from the first webhook to the end of the call."""

    def __init__(
        self,
        call: CallRecord,
        persona: Persona,
        client: WebhookClient,
        voice: CallerVoice,
        recordings: RecordingStore,
        settings: SimulatorSettings,
        on_answer: Callable[[], Awaitable[None]],
    ) -> None:
        self.call = call
        self.persona = persona
        self.client = client
        self.recordings = recordings
        self.settings = settings
        self.on_answer = on_answer  # an inbound call is answered by its first verb
        self.caller = Caller(persona, voice, call)
        self._record_follows = False  # see _execute
        self._prompts: dict[str, PromptAudio | None] = {}

    # -- the document loop ---------------------------------------------------------------

    async def run(self, first: Jump) -> CallEnded:
        """Request ``first`` and follow the call to its end; returns how it ended."""
        jump: Jump | None = first
        try:
            while jump is not None:
                document = await self._fetch(jump)
                jump = await self._execute(document, jump.url)
            self.call.log("hangup", "end of the TwiML document")
            return CallEnded("hangup")
        except CallEnded as ended:
            return ended
        finally:
            self.call.unused_turns = self.caller.script.remaining

    def _error(self, text: str, **data: Any) -> None:
        self.call.log("error", text, **data)

    async def _fetch(self, jump: Jump) -> ET.Element:
        call = self.call
        if call.webhook_requests >= self.settings.max_webhooks_per_call:
            self._error(
                f"more than {self.settings.max_webhooks_per_call} webhook requests "
                "on one call: a redirect loop? the call is ended",
                url=jump.url,
            )
            raise CallEnded("error")
        call.webhook_requests += 1
        params = {**voice_params(call, call.status), **jump.params}
        exchange, body = await self.client.send(
            jump.purpose, jump.method, jump.url, params, call.sid
        )
        where = f"{jump.method} {jump.url}"
        if exchange.error is not None or exchange.status is None:
            self._error(f"application error: {exchange.error}", url=jump.url)
            raise CallEnded("error")
        if not 200 <= exchange.status < 300:
            self._error(
                f"application error: {where} answered HTTP {exchange.status}",
                url=jump.url,
                status=exchange.status,
            )
            raise CallEnded("error")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            self._error(f"application error: {where} returned invalid XML ({exc})", url=jump.url)
            raise CallEnded("error") from exc
        if root.tag != "Response":
            self._error(
                f"application error: {where} returned <{root.tag}>, not <Response>", url=jump.url
            )
            raise CallEnded("error")
        return root

    async def _execute(self, document: ET.Element, doc_url: str) -> Jump | None:
        verbs = list(document)
        for index, verb in enumerate(verbs):
            # A <Gather> right before a <Record> only catches keys during the prompts: a
            # caller who stays silent is silent for both, and answers the <Record> with it.
            self._record_follows = index + 1 < len(verbs) and verbs[index + 1].tag == "Record"
            self._check_live()
            if verb.tag == "Reject":
                self._reject(verb)
            if self.call.status != "in-progress":
                await self.on_answer()
            handler = self._handlers().get(verb.tag)
            if handler is None:
                if verb.tag in NOT_SIMULATED:
                    self._error(f"<{verb.tag}> is not simulated; skipped")
                    continue
                self._error(f"application error: <{verb.tag}> is not a TwiML voice verb")
                raise CallEnded("error")
            jump = await handler(verb, doc_url)
            if jump is not None:
                return jump
        return None

    def _handlers(self) -> dict[str, Callable[[ET.Element, str], Awaitable[Jump | None]]]:
        return {
            "Play": self._play_verb,
            "Say": self._say_verb,
            "Pause": self._pause_verb,
            "Gather": self._gather,
            "Record": self._record,
            "Redirect": self._redirect,
            "Dial": self._dial,
            "Connect": self._connect,
            "Hangup": self._hangup,
        }

    # -- time ----------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self.call.end_requested is not None:
            self.call.log("hangup", f"ended through the REST API ({self.call.end_requested})")
            raise CallEnded("api")

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of call time pass; the caller hangs up at ``max_call_seconds``."""
        limit = self.persona.max_call_seconds
        if self.call.elapsed + seconds > limit:
            self.call.elapsed = limit
            self.call.log("caller-hangup", f"the caller hangs up after {limit:g} s")
            raise CallEnded("caller-hangup")
        self.call.elapsed += seconds
        await asyncio.sleep(seconds * self.settings.pace)
        self._check_live()

    # -- attributes ----------------------------------------------------------------------

    def _number(self, verb: ET.Element, name: str, default: float) -> float:
        raw = verb.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0 or not math.isfinite(value):
            self._error(f"<{verb.tag} {name}={raw!r}> is not a valid number; using {default:g}")
            return default
        return value

    @staticmethod
    def _method(verb: ET.Element) -> str:
        return (verb.get("method") or "POST").upper()

    @staticmethod
    def _action(verb: ET.Element, doc_url: str) -> str:
        return urljoin(doc_url, verb.get("action") or doc_url)

    # -- prompts -------------------------------------------------------------------------

    async def _load_prompt(self, url: str) -> PromptAudio | None:
        """Fetch and decode a <Play> URL once per call (Twilio caches media too)."""
        if url not in self._prompts:
            keep = self.settings.keep_prompt_audio
            fetched = await self.client.fetch_prompt(url, self.call.sid, keep)
            if isinstance(fetched, str):
                self._error(fetched, url=url)
            self._prompts[url] = fetched if isinstance(fetched, PromptAudio) else None
        return self._prompts[url]

    async def _prompt(self, verb: ET.Element, doc_url: str, budget: float | None) -> float:
        """Play, say or pause; stop after ``budget`` seconds (a key press). Returns seconds."""
        loops = int(self._number(verb, "loop", 1))
        text = (verb.text or "").strip()
        data: dict[str, Any] = {}
        audio = None
        kind: EntryKind
        if verb.tag == "Pause":
            kind, length, label = "pause", self._number(verb, "length", 1), "pause"
            loops = 1
        elif verb.tag == "Say":
            words = max(1, len(text.split()))
            kind, length, label = "say", words / SPEECH_WORDS_PER_SECOND, text
            data = {"language": verb.get("language") or "en-US", "voice": verb.get("voice")}
        else:
            kind, url = "play", urljoin(doc_url, text)
            if not text:
                if verb.get("digits"):
                    self.call.log("note", f"plays digits {verb.get('digits')}")
                    return 0.0
                self._error("<Play> without a URL")
                return 0.0
            prompt = await self._load_prompt(url)
            if prompt is None:
                return 0.0
            audio, length, label = prompt.pcm8k, prompt.duration, url
            data = {"url": url, "format": prompt.format}
        total = length * loops if loops > 0 else math.inf  # loop="0": until something stops it
        played = total if budget is None else min(total, budget)
        interrupted = played < total
        data.update(duration=round(length, 3), loops=loops)
        if interrupted:
            data["interrupted_at"] = round(played, 3)
        self.call.log(kind, label, audio=audio, **data)
        await self.advance(played)
        return played

    async def _play_verb(self, verb: ET.Element, doc_url: str) -> None:
        await self._prompt(verb, doc_url, None)

    async def _say_verb(self, verb: ET.Element, doc_url: str) -> None:
        await self._prompt(verb, doc_url, None)

    async def _pause_verb(self, verb: ET.Element, doc_url: str) -> None:
        await self._prompt(verb, doc_url, None)

    # -- listening -----------------------------------------------------------------------

    async def _gather(self, verb: ET.Element, doc_url: str) -> Jump | None:
        num_digits = int(self._number(verb, "numDigits", 0))  # 0: no limit
        finish_on = verb.get("finishOnKey", "#")
        timeout = self._number(verb, "timeout", 5)
        on_empty = verb.get("actionOnEmptyResult", "false").lower() == "true"
        if "speech" in (verb.get("input") or "dtmf"):
            self._error("<Gather input=speech> is cloud recognition: not simulated, keys only")
        keys = self.caller.keys()
        budget = self.persona.barge_in_after if keys is not None else None
        spent = 0.0
        for nested in verb:
            if nested.tag not in ("Say", "Play", "Pause"):
                self._error(f"<Gather> cannot nest <{nested.tag}>; skipped")
                continue
            if budget is not None and spent >= budget:
                break  # the caller already typed: the rest of the prompts is not played
            remaining = None if budget is None else budget - spent
            spent += await self._prompt(nested, doc_url, remaining)
        action, method = self._action(verb, doc_url), self._method(verb)
        if keys is None:
            if self.caller.hangs_up():
                raise CallEnded("caller-hangup")
            if not self._record_follows:
                self.caller.stays_silent()
            await self.advance(timeout)
            self.call.log("gather-timeout", f"no keys in {timeout:g} s")
            return Jump(action, method, {"Digits": ""}, "action") if on_empty else None
        digits, finished = "", ""
        for key in keys:
            if key in finish_on:
                finished = key
                break
            digits += key
            if num_digits and len(digits) >= num_digits:
                break
        self.call.log("keys", f"presses {keys}", keys=keys, digits=digits)
        await self.advance(KEY_GAP * len(keys))
        if not finished and not (num_digits and len(digits) >= num_digits):
            await self.advance(timeout)  # Twilio waits for more keys before it submits
        if not digits and not on_empty:
            self.call.log("gather-timeout", "only the finish key: no input")
            return None
        return Jump(action, method, {"Digits": digits, "FinishedOnKey": finished}, "action")

    async def _record(self, verb: ET.Element, doc_url: str) -> Jump | None:
        timeout = self._number(verb, "timeout", 5)
        max_length = self._number(verb, "maxLength", 3600) or 3600
        finish_on = verb.get("finishOnKey", "1234567890*#")
        if verb.get("playBeep", "true").lower() != "false":
            self.call.log("beep", "beep")
        if self.caller.hangs_up():
            raise CallEnded("caller-hangup")
        pcm, source, digits = await self.caller.recording(finish_on)
        limit = int(max_length * TELEPHONY_RATE) * 2
        if len(pcm) > limit:
            pcm = pcm[:limit]
            self.call.log("note", f"recording cut at maxLength {max_length:g} s")
        await self.advance(duration_seconds(pcm, TELEPHONY_RATE))
        if not digits:
            await self.advance(timeout)  # the silence that ends the recording
        if not digits and rms(pcm) < SILENCE_RMS:
            # Twilio's one exception: an empty recording does not request the action URL.
            self.call.log("recording", "empty recording: no action request", empty=True)
            return None
        if verb.get("trim", "trim-silence") == "do-not-trim":
            pcm = silence(RECORDING_LEAD_IN) + pcm + (b"" if digits else silence(timeout))
        recording = self.recordings.create(self.call, pcm, source)
        url = self.call.api_base + recording.uri()
        self.call.log(
            "recording",
            f"recorded {recording.duration:.2f} s",
            sid=recording.sid,
            url=url,
            duration=round(recording.duration, 3),
            digits=digits,
        )
        params = {
            "RecordingUrl": url,
            "RecordingSid": recording.sid,
            "RecordingDuration": str(whole_seconds(recording.duration)),
        }
        if digits:
            params["Digits"] = digits
        callback = verb.get("recordingStatusCallback")
        if callback:
            status_params = {
                **voice_params(self.call, "in-progress"),
                **params,
                "RecordingStatus": "completed",
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            }
            await self.client.send(
                "recording-status",
                verb.get("recordingStatusCallbackMethod") or "POST",
                urljoin(doc_url, callback),
                status_params,
                self.call.sid,
            )
        return Jump(self._action(verb, doc_url), self._method(verb), params, "action")

    # -- control flow --------------------------------------------------------------------

    async def _redirect(self, verb: ET.Element, doc_url: str) -> Jump:
        target = (verb.text or "").strip()
        if not target:
            self._error("application error: <Redirect> without a URL")
            raise CallEnded("error")
        url = urljoin(doc_url, target)
        self.call.log("redirect", url, url=url)
        return Jump(url, self._method(verb), {}, "redirect")

    async def _dial(self, verb: ET.Element, doc_url: str) -> None:
        targets = [
            (child.text or "").strip() for child in verb if child.tag in ("Number", "Client", "Sip")
        ] or [(verb.text or "").strip()]
        number = next((t for t in targets if t), "")
        if not number:
            self._error("application error: <Dial> without a number")
            raise CallEnded("error")
        self.call.transfer_to = number
        self.call.log("dial", f"transferred to {number}", to=number)
        talk = self.persona.transfer_talk_seconds
        await self.advance(talk)
        self.call.log("caller-hangup", "the caller hangs up after talking to the transfer target")
        if verb.get("action"):
            params = {
                **voice_params(self.call, "completed"),
                "DialCallStatus": "completed",
                "DialCallSid": new_sid("CA"),
                "DialBridged": "true",
                "DialCallDuration": str(whole_seconds(talk)),
            }
            # The caller is gone: Twilio still reports the dial outcome, and ignores the TwiML.
            await self.client.send(
                "action", self._method(verb), self._action(verb, doc_url), params, self.call.sid
            )
        raise CallEnded("dial")

    async def _connect(self, verb: ET.Element, doc_url: str) -> Jump | None:
        """``<Connect><Stream>``: the call talks over a Media Stream until the socket closes.

        Then, like Twilio, request ``action`` (the call goes on with its TwiML), or without
        one run the next verb. Other ``<Connect>`` nouns (Room, ConversationRelay ...) are
        Twilio services the simulator does not have.
        """
        stream = verb.find("Stream")
        if stream is None:
            nouns = ", ".join(f"<{child.tag}>" for child in verb) or "nothing"
            self._error(f"<Connect> with {nouns} is not simulated (only <Stream>); skipped")
            return None
        url = urljoin(doc_url, stream.get("url") or "")
        parameters = {
            p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter") if p.get("name")
        }
        media = MediaStream(self.call, self.caller, self.client, self.settings, url, parameters)
        end = await media.run()
        if end == "caller-hangup":
            raise CallEnded("caller-hangup")
        if end == "api":
            raise CallEnded("api")
        if verb.get("action"):
            return Jump(self._action(verb, doc_url), self._method(verb), {}, "action")
        return None

    async def _hangup(self, verb: ET.Element, doc_url: str) -> None:
        del verb, doc_url
        self.call.log("hangup", "the application hangs up")
        raise CallEnded("hangup")

    def _reject(self, verb: ET.Element) -> None:
        reason = verb.get("reason", "rejected")
        self.call.log("reject", f"rejected ({reason})", reason=reason)
        if self.call.status == "in-progress":
            raise CallEnded("reject")
        # Rejecting a call that was never picked up: busy signal or "not in service".
        raise CallEnded("reject", "busy" if reason == "busy" else "no-answer")
