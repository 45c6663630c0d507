"""Prompt audio for a call's turns, prepared as early as the prompt's text is known.

- A turn's prompts start rendering as soon as the engine emits them (:class:`TurnAudio`): the
  prompt before a lookup renders while the lookup runs, and the one after it (which names what
  the lookup found) as soon as the lookup returns, while the engine carries on.
- An outbound call's first prompts (its greeting, templated with the notification's
  variables, and its voicemail text) are rendered before the provider is asked to dial
  (:func:`render_first_prompts`), so the answer webhook finds them in the cache.

Rendering never runs on the event loop: a prompt used before is one stat, a first cache
look-up runs in a thread (once for all the calls asking at the same time), synthesis in the
speech service's own queue (see ``PromptCache.prompt_audio_async``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from ivr.calls.services import Services
from ivr.calls.turns import Turn
from ivr.dialplan.engine import step
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session
from ivr.dialplan.vocabulary import AnsweredBy, CallAnswered, Output, Play, Say
from ivr.speech.audio import AudioFormat
from ivr.speech.tts import TtsError

log = logging.getLogger(__name__)

Prompt = Say | Play
FAILURES = (TtsError, ValueError, OSError)
# Where the web layer serves prompt audio (ivr/web/audio_routes.py), behind a signature.
AUDIO_PREFIX = "/audio/"


def audio_path(audio_dir: Path, file: Path) -> str:
    """The URL path of an audio file under ``audio_dir`` (``/audio/cache/ab/abcd.wav``).

    Prompt files are named from ``audio_dir`` already, so a lexical comparison suffices;
    resolving symlinks (a stat per path component) is the fallback, not the rule, because
    this runs for every prompt of every webhook.
    """
    try:
        return AUDIO_PREFIX + file.relative_to(audio_dir).as_posix()
    except ValueError:
        return AUDIO_PREFIX + file.resolve().relative_to(audio_dir.resolve()).as_posix()


class TurnAudio:
    """The prompt files of one turn, each started the moment its output exists."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self._files: dict[Prompt, asyncio.Task[Path]] = {}

    def start(self, outputs: Sequence[Output]) -> None:
        for output in outputs:
            if isinstance(output, Say | Play) and output not in self._files:
                self._files[output] = asyncio.ensure_future(self._prepare(output))

    async def _prepare(self, output: Prompt) -> Path:
        if isinstance(output, Say):
            return await self.s.prompts.prompt_audio_async(output.text, output.language)
        recording = self.s.settings.audio_dir / output.path
        return await asyncio.to_thread(
            self.s.prompts.prepare_recording, recording, AudioFormat.MULAW
        )

    async def paths(self, turn: Turn) -> dict[Prompt, str]:
        """Signed-URL paths of the turn's prompts; a prompt that fails falls back to <Say>."""
        self.start(turn.outputs)
        paths: dict[Prompt, str] = {}
        for output, task in self._files.items():
            try:
                paths[output] = audio_path(self.s.settings.audio_dir, await task)
            except FAILURES as exc:
                log.warning("prompt %r could not be prepared: %s", output, exc)
                turn.log.append(("error", {"prompt": str(output), "problem": str(exc)}))
        return paths


ANSWERS: tuple[AnsweredBy, ...] = ("human", "machine")


def first_prompts(plan: Plan, session: Session) -> list[Say]:
    """What the plan says as soon as the call is answered, by a person or a machine, up to
    its first wait or lookup (the engine is pure: nothing happens by asking)."""
    said: dict[Say, None] = {}
    for answered_by in ANSWERS:
        _, outputs = step(plan, session, CallAnswered(answered_by))
        said.update((o, None) for o in outputs if isinstance(o, Say))
    return list(said)


async def render_first_prompts(services: Services, plan: Plan, session: Session) -> int:
    """Render the call's first prompts into the cache; returns how many (failures logged:
    the answer webhook renders again, or falls back to <Say>)."""
    rendered = 0
    for say in first_prompts(plan, session):
        try:
            await services.prompts.prompt_audio_async(say.text, say.language)
            rendered += 1
        except FAILURES as exc:
            log.warning("first prompt %r could not be rendered before dialing: %s", say, exc)
    return rendered
