"""The player's pacing: frames at most ``ahead`` real seconds in front of playback, at any pace.

No assertion is about how fast anything ran: a loaded machine only sends later, and every
bound below holds however late a frame went out.
"""

from __future__ import annotations

import asyncio

import pytest

from ivr.calls.media import FRAME_BYTES, SAMPLE_RATE, LivePrompt
from ivr.calls.playback import BURST, Player, mark_name

SECONDS = 1.0
PROMPT = LivePrompt(b"\x7f" * int(SECONDS * SAMPLE_RATE))


class Recorder:
    """A transport that notes what was sent and the loop time it was sent at."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, bytes | str]] = []

    async def send_audio(self, mulaw: bytes) -> None:
        self.sent.append((asyncio.get_running_loop().time(), "audio", mulaw))

    async def send_mark(self, name: str) -> None:
        self.sent.append((asyncio.get_running_loop().time(), "mark", name))

    async def clear(self) -> None:
        raise AssertionError("nothing was interrupted")


async def play(pace: float, ahead: float) -> tuple[float, Recorder, Player]:
    wire = Recorder()
    player = Player(wire, 3, [PROMPT], ahead, pace)
    begun = asyncio.get_running_loop().time()
    player.start()
    while player.sending:
        await asyncio.sleep(0.01)
    return begun, wire, player


@pytest.mark.parametrize("pace", [1.0, 0.1])
async def test_frames_stay_at_most_ahead_of_playback_in_real_seconds(pace: float) -> None:
    ahead = 0.3 * pace * SECONDS  # less than the prompt: the player must wait for playback
    begun, wire, player = await play(pace, ahead)
    audio = [(at, data) for at, kind, data in wire.sent if kind == "audio"]
    assert b"".join(data for _, data in audio) == PROMPT.audio  # type: ignore[misc]
    assert wire.sent[-1][1:] == ("mark", mark_name(3, 0))
    queued = 0.0  # real seconds of audio sent before each frame
    for at, data in audio:
        # Playback started no earlier than ``begun``: what was in front of it is bounded.
        assert queued - (at - begun) <= ahead + BURST * pace + 1e-6, (queued, at - begun)
        queued += len(data) / SAMPLE_RATE * pace
    # The audio plays out ``SECONDS * pace`` real seconds after the player started.
    assert player.ends_at is not None
    last = wire.sent[-1][0]
    assert begun + SECONDS * pace <= player.ends_at <= last + SECONDS * pace
    assert len(audio) == len(PROMPT.audio) // FRAME_BYTES
