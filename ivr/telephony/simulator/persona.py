"""Who answers a simulated number, and how the caller's turns become audio and key presses.

A :class:`Persona` is registered in the simulator for a phone number. It decides whether the
phone is picked up at all (``no-answer``, ``busy``, ``failed``), by a person or by an
answering machine, and — for a person — what they do, turn by turn, using the same
:class:`~ivr.simulation.scenario.Turn` list as ``ivr simulate`` scenario files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ivr.simulation.scenario import Scenario, Turn
from ivr.simulation.voice import CallerVoice as CallerVoice  # re-exported for the simulator
from ivr.speech.audio import TELEPHONY_RATE, duration_seconds
from ivr.telephony.simulator.state import CallRecord

AnswerMode = Literal["human", "machine", "no-answer", "busy", "failed"]
Detection = Literal["human", "machine", "unknown", "fax"]
MachineEnd = Literal["machine_end_beep", "machine_end_silence", "machine_end_other"]

RECORDING_LEAD_IN = 0.5  # seconds between the beep and the caller's first sound
KEY_GAP = 0.1  # seconds between two key presses

# Keypad tones (ITU-T Q.23): each key is the sum of a row and a column frequency.
_DTMF_ROWS = {"123": 697, "456": 770, "789": 852, "*0#": 941}
_DTMF_COLUMNS = {"147*": 1209, "2580": 1336, "369#": 1477}


class Persona(BaseModel):
    """How a number behaves when it is called (or, for inbound calls, who is calling)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: AnswerMode = "human"
    turns: list[Turn] = []
    # What machine detection concludes (AnsweredBy); None: what ``answer`` says.
    detected_as: Detection | None = None
    machine_end: MachineEnd = "machine_end_beep"
    ring_seconds: float = Field(default=3.0, ge=0)
    # How long a machine's greeting lasts (DetectMessageEnd waits for its end) or how long
    # detection takes to recognise a person.
    greeting_seconds: float = Field(default=4.0, ge=0)
    language: str = "en-US"  # the language the caller's ``say:`` turns are spoken in
    # Seconds into a <Gather>'s nested prompts at which the caller presses keys (barge-in);
    # None: the caller listens to the prompts to the end first.
    barge_in_after: float | None = Field(default=1.5, ge=0)
    # What a person does when the robot waits for input after the script ran out: hang up,
    # like the end of an ``ivr simulate`` scenario, or stay silent until the robot gives up.
    when_script_ends: Literal["hang-up", "stay-silent"] = "hang-up"
    max_call_seconds: float = Field(default=900.0, gt=0)  # then the caller hangs up anyway
    transfer_talk_seconds: float = Field(default=30.0, ge=0)  # with the human after a <Dial>
    # Media Streams: the network drops the call's first stream (no ``stop``, the socket just
    # goes) once this many marks were echoed, so that <Connect action> must resume the call.
    drop_stream_after_marks: int | None = Field(default=None, ge=1)

    @classmethod
    def from_scenario(cls, scenario: Scenario, **overrides: object) -> Persona:
        """A person (or machine) acting out a scenario file's turns."""
        answer: AnswerMode = "machine" if scenario.answered_by == "machine" else "human"
        detected: Detection = scenario.answered_by
        values: dict[str, object] = {
            "answer": answer,
            "turns": scenario.turns,
            "detected_as": detected,
        }
        return cls.model_validate({**values, **overrides})

    @classmethod
    def person(cls, *turns: Turn, **overrides: object) -> Persona:
        return cls.model_validate({"answer": "human", "turns": list(turns), **overrides})

    @classmethod
    def machine(cls, **overrides: object) -> Persona:
        return cls.model_validate({"answer": "machine", **overrides})

    @classmethod
    def nobody(cls, answer: Literal["no-answer", "busy", "failed"] = "no-answer") -> Persona:
        return cls(answer=answer)

    @property
    def picks_up(self) -> bool:
        return self.answer in ("human", "machine")

    def answered_by(self, machine_detection: str | None) -> str | None:
        """The ``AnsweredBy`` parameter Twilio would report, None without detection."""
        if machine_detection is None:
            return None
        detected = self.detected_as or ("machine" if self.answer == "machine" else "human")
        if detected != "machine":
            return detected
        return self.machine_end if machine_detection == "detectmessageend" else "machine_start"


class CallerScript:
    """The turns a caller still has to act out; turns that only expect something are skipped."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self._turns = [turn for turn in turns if turn.acts]
        self._next = 0

    def peek(self) -> Turn | None:
        return self._turns[self._next] if self._next < len(self._turns) else None

    def take(self) -> Turn | None:
        turn = self.peek()
        if turn is not None:
            self._next += 1
        return turn

    def upcoming(self) -> list[Turn]:
        return self._turns[self._next :]

    @property
    def remaining(self) -> int:
        return len(self._turns) - self._next


def dtmf_tone(key: str, seconds: float = 0.15) -> bytes:
    """The keypad tone of one key as 8 kHz 16-bit PCM (what a recording hears of a key press)."""
    row = next(f for keys, f in _DTMF_ROWS.items() if key in keys)
    column = next(f for keys, f in _DTMF_COLUMNS.items() if key in keys)
    t = np.arange(int(seconds * TELEPHONY_RATE)) / TELEPHONY_RATE
    wave = 0.35 * (np.sin(2 * math.pi * row * t) + np.sin(2 * math.pi * column * t))
    return np.round(wave * 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * TELEPHONY_RATE))


class Caller:
    """The party on the line, acting out a persona's script as the robot asks for input.

    Turns are consumed only where the robot listens: ``press`` by ``<Gather>`` and
    ``<Record>``, ``say``/``audio``/``silence`` by ``<Record>`` (and ``silence`` by a
    ``<Gather>`` it lets time out). Everything the caller does goes into the transcript.
    """

    def __init__(self, persona: Persona, voice: CallerVoice, call: CallRecord) -> None:
        self.persona = persona
        self.voice = voice
        self.call = call
        self.script = CallerScript(persona.turns)
        self.stream_dropped = False  # Persona.drop_stream_after_marks happens once per call

    def hangs_up(self) -> bool:
        """Asked for input: True (and logged) when the caller hangs up instead."""
        turn = self.script.peek()
        if turn is not None and turn.hangup:
            self.script.take()
            self.call.log("caller-hangup", "the caller hangs up")
            return True
        persona = self.persona
        if turn is None and persona.answer == "human" and persona.when_script_ends == "hang-up":
            self.call.log("caller-hangup", "the caller hangs up (end of script)")
            return True
        return False

    def keys(self) -> str | None:
        """The keys pressed for a ``<Gather>``, if the next turn is a key press."""
        turn = self.script.peek()
        if turn is None or turn.press is None:
            return None
        self.script.take()
        return turn.press

    def stays_silent(self) -> None:
        """A ``<Gather>`` timed out: a scripted ``silence`` turn was this answer."""
        turn = self.script.peek()
        if turn is not None and turn.silence:
            self.script.take()
            self.call.log("silence", "the caller says nothing")

    async def recording(self, finish_on: str) -> tuple[bytes, str, str]:
        """What a ``<Record>`` hears: (8 kHz PCM, its source, the key that ended it)."""
        turn = self.script.peek()
        if turn is None or turn.hangup:
            return b"", "silence", ""  # hangs_up() was asked first; a machine stays silent
        self.script.take()
        if turn.say is not None:
            pcm = await self.voice.speak(turn.say, self.persona.language)
            self._log_sound("speech", f'says "{turn.say}"', pcm, text=turn.say)
            return pcm, turn.say, ""
        if turn.audio is not None:
            try:
                pcm = await self.voice.load(turn.audio)
            except (OSError, ValueError) as exc:
                self.call.log("error", f"caller audio: {exc}")
                return b"", "silence", ""
            self._log_sound("audio", f"plays {turn.audio}", pcm, file=turn.audio)
            return pcm, turn.audio, ""
        if turn.press is not None:
            # Keys outside finishOnKey are only tones on the recording; the first one in
            # it ends the recording and is reported as Digits.
            pcm, ending = silence(RECORDING_LEAD_IN), ""
            for key in turn.press:
                if key in finish_on:
                    ending = key
                    break
                pcm += dtmf_tone(key) + silence(KEY_GAP)
            self.call.log("keys", f"presses {turn.press}", keys=turn.press, digits=ending)
            return pcm, turn.press, ending
        self.call.log("silence", "the caller says nothing")
        return b"", "silence", ""

    def _log_sound(
        self, kind: Literal["speech", "audio"], line: str, pcm: bytes, /, **data: Any
    ) -> None:
        seconds = round(duration_seconds(pcm, TELEPHONY_RATE), 3)
        self.call.log(kind, line, duration=seconds, **data)
