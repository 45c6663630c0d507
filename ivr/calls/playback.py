"""Prompts out as paced 20 ms frames, a mark after each prompt.

The provider buffers what it is sent and plays it in real time. Sending a whole prompt at
once would put seconds of audio in that buffer: a ``clear`` empties it, but marks and the
listening timeout would drift from what the caller hears, and a provider may refuse a flood.
So frames go out at the speed they play, at most ``ahead`` (real) seconds in front of playback.
``pace`` is the wall-clock seconds one second of audio takes to play: 1 for a real provider,
less for a simulated one that plays faster than real time (its ``stream_time_scale``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ivr.calls.media import FRAME_BYTES, SAMPLE_RATE, LivePrompt, MediaTransport

DEFAULT_AHEAD = 1.0
BURST = 0.1


def mark_name(turn: int, index: int) -> str:
    """The mark sent after prompt ``index`` of ``turn``: its echo says the caller heard it."""
    return f"t{turn}p{index}"


def parse_mark(name: str) -> tuple[int, int] | None:
    """``(turn, index)`` of a mark named by :func:`mark_name`; None for any other name."""
    turn, sep, index = name.removeprefix("t").partition("p")
    if not name.startswith("t") or not sep or not turn.isdecimal() or not index.isdecimal():
        return None
    return int(turn), int(index)


class Player:
    """Plays one turn's prompts; ``cancel()`` stops sending (the caller interrupted)."""

    def __init__(
        self,
        transport: MediaTransport,
        turn: int,
        prompts: Sequence[LivePrompt],
        ahead: float = DEFAULT_AHEAD,
        pace: float = 1.0,
    ) -> None:
        self._transport = transport
        self._turn = turn
        self._prompts = list(prompts)
        self._ahead = ahead
        self._pace = pace
        self._task: asyncio.Task[None] | None = None
        # Loop time at which everything sent so far will have played (an estimate: the
        # provider's own clock decides; marks tell the truth).
        self.ends_at: float | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    @property
    def sending(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0.0  # seconds of audio
        for index, prompt in enumerate(self._prompts):
            for offset in range(0, len(prompt.audio), FRAME_BYTES):
                # In real seconds whatever the pace: a stalled event loop runs a faster
                # earpiece dry no sooner than a real one.
                lead = sent * self._pace - (loop.time() - started)
                if lead > self._ahead:
                    # Sleep a little past the limit, then send a burst: one wake-up per
                    # BURST of audio instead of one per 20 ms frame (many calls at once).
                    await asyncio.sleep(lead - self._ahead + BURST * self._pace)
                frame = prompt.audio[offset : offset + FRAME_BYTES]
                await self._transport.send_audio(frame)
                sent += len(frame) / SAMPLE_RATE
                self.ends_at = started + sent * self._pace
            await self._transport.send_mark(mark_name(self._turn, index))
        self.ends_at = started + sent * self._pace

    async def cancel(self) -> None:
        """Stop sending; a send that already failed (the stream closed) is not raised here:
        the adapter sees the closed stream and ends the session."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
