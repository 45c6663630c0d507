"""The simulated caller's earpiece on a Media Stream: Twilio's playback buffer.

The application's ``media`` payloads queue up and play one 20 ms frame per tick; a ``mark``
is due once every byte queued before it has played; ``clear`` drops what is queued and makes
every pending mark due at once. Each prompt (the audio up to a mark) becomes a ``heard``
transcript entry: how long it was, how much of it played, whether ``clear`` cut it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ivr.speech.audio import TELEPHONY_RATE, mulaw_to_pcm16
from ivr.telephony.simulator.state import CallRecord


@dataclass
class _Prompt:
    """Audio the application queued up to one mark (or up to now, while no mark came)."""

    started_at: float | None = None  # call time its first frame played
    audio: bytearray = field(default_factory=bytearray)  # mu-law not yet played
    queued: int = 0
    played: bytearray = field(default_factory=bytearray)
    mark: str | None = None


class Earpiece:
    """What the caller hears, in order, at the speed a phone plays it."""

    def __init__(self, call: CallRecord, keep_audio: bool) -> None:
        self.call = call
        self.keep_audio = keep_audio  # keep the played audio in the ``heard`` entries
        self._queue: deque[_Prompt] = deque()

    @property
    def talking(self) -> bool:
        """Audio is queued that has not played yet."""
        return any(prompt.audio for prompt in self._queue)

    def _open(self) -> _Prompt:
        if not self._queue or self._queue[-1].mark is not None:
            self._queue.append(_Prompt())
        return self._queue[-1]

    def add_audio(self, mulaw: bytes) -> None:
        prompt = self._open()
        prompt.audio.extend(mulaw)
        prompt.queued += len(mulaw)

    def add_mark(self, name: str) -> str | None:
        """Queue a mark; returns it when it is due at once (nothing is left to play before it)."""
        self._open().mark = name
        if len(self._queue) == 1 and not self._queue[0].audio:
            return self._finish(self._queue.popleft(), cut=False)
        return None

    def play(self, frame_bytes: int) -> tuple[bool, list[str]]:
        """Play one frame: (whether any audio played, the marks now due)."""
        need, played, marks = frame_bytes, False, []
        while self._queue:
            head = self._queue[0]
            if need and head.audio:
                if head.started_at is None:
                    head.started_at = self.call.elapsed
                piece = bytes(head.audio[:need])
                del head.audio[:need]
                head.played.extend(piece)
                need -= len(piece)
                played = True
            if head.audio or head.mark is None:
                break  # more to play next tick, or no mark yet to close this prompt
            name = self._finish(self._queue.popleft(), cut=False)
            if name is not None:
                marks.append(name)
        return played, marks

    def clear(self) -> list[str]:
        """Drop everything queued; every pending mark is due now (Twilio documents so)."""
        pending = list(self._queue)
        self._queue.clear()
        names = [self._finish(prompt, cut=bool(prompt.audio)) for prompt in pending]
        return [name for name in names if name is not None]

    def flush(self, why: str) -> None:
        """The stream is over: whatever was still queued was never heard."""
        for prompt in self._queue:
            if prompt.audio:
                self.call.log("note", f"{len(prompt.audio) / TELEPHONY_RATE:.2f} s unplayed: {why}")
            self._finish(prompt, cut=bool(prompt.audio))
        self._queue.clear()

    def _finish(self, prompt: _Prompt, *, cut: bool) -> str | None:
        """Log what the caller heard of ``prompt``; returns its mark to echo."""
        if prompt.queued:
            heard = len(prompt.played) / TELEPHONY_RATE  # mu-law: one byte per sample
            queued = prompt.queued / TELEPHONY_RATE
            cut_text = f", cut by clear after {heard:.2f} s" if cut else ""
            self.call.log(
                "heard",
                f"heard {heard:.2f} of {queued:.2f} s{cut_text} (mark {prompt.mark})",
                audio=mulaw_to_pcm16(bytes(prompt.played)) if self.keep_audio else None,
                mark=prompt.mark,
                duration=round(queued, 3),
                heard=round(heard, 3),
                cut=cut,
                started_at=None if prompt.started_at is None else round(prompt.started_at, 3),
            )
        return prompt.mark
