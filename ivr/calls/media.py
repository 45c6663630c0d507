"""What a live media session talks to: the provider's transport and the call runtime.

Audio is 8 kHz mono G.711 mu-law throughout (what telephony streams carry); a frame is
20 ms (160 bytes). A provider adapter implements :class:`MediaTransport`; the web layer
implements :class:`CallRuntime` over the call service (engine step, commit, prompt audio).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.dialplan.vocabulary import Event, Listen
from ivr.speech.live import LiveEvent

SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms


class MediaTransport(Protocol):
    """The provider's side of a live call: what the session sends to the caller."""

    async def send_audio(self, mulaw: bytes) -> None:
        """Queue audio for playback (the provider buffers it and plays it in order)."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask to be told (``MediaSession.mark``) when the audio queued so far has played."""
        ...

    async def clear(self) -> None:
        """Drop the audio queued and not yet played (barge-in); pending marks come back."""
        ...


@dataclass(frozen=True)
class LivePrompt:
    """One prompt of a turn as audio, and whether the caller may interrupt it."""

    audio: bytes
    barge_in: bool = True
    label: str = ""


@dataclass(frozen=True)
class LiveTurn:
    """Where a call stands: the stored turn, its prompts, and what it waits for.

    ``listen`` None means the call ends (transfer or hang-up) once the prompts are heard.
    """

    turn: int
    prompts: tuple[LivePrompt, ...]
    listen: Listen | None


@dataclass(frozen=True)
class Heard:
    """How the caller met a turn's prompts, for the call's event log."""

    prompts: int  # how many the turn had
    heard: int  # how many played to their end (their mark came back)
    barge_in: str | None = None  # "speech" or "key" when the caller cut a prompt

    def as_log(self) -> dict[str, object]:
        return {"prompts": self.prompts, "heard": self.heard, "barge_in": self.barge_in}


class SpeechListener(Protocol):
    """One listening turn over caller audio (``ivr.speech.live.LiveListener``)."""

    async def feed(self, mulaw: bytes) -> list[LiveEvent]: ...

    async def close(self) -> None: ...


class CallRuntime(Protocol):
    """The call a session runs, turn by turn; every answer is committed before it returns."""

    async def resume(self) -> LiveTurn | None:
        """The stored turn to play and listen to; None if the call is unknown or over."""
        ...

    async def answer(self, turn: LiveTurn, event: Event, heard: Heard) -> LiveTurn | None:
        """Step the plan with the caller's answer to ``turn`` and commit the next turn (with
        ``heard`` in the call's event log); None when the call moved on elsewhere (another
        stream or webhook took the turn)."""
        ...

    def listener(self, listen: Listen) -> SpeechListener | None:
        """A speech listener for the listen's grammar; None: keypad only."""
        ...
