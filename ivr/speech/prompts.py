"""Prompt audio on disk: a content-addressed cache of synthesized prompts, and recordings.

A prompt file is named by the sha256 of everything that changes its sound (engine, voice,
rate, final text, output format), so a file, once written, is never stale and never needs
invalidating. Static prompts (no template variables) are rendered ahead of time by
``ivr prompts build``; prompts with variables are rendered on first use and cached by their
final text. Files are written to a temporary name and renamed into place (``os.replace`` is
atomic on one file system), so several processes can share one cache directory: a reader
sees a whole file or none, and when two processes render the same prompt at once the last
rename wins with a file just as valid as the first.

Recorded prompts (``play: file.wav`` in a plan) live under ``audio/``; one in the wrong format
is converted once into the cache, keyed by the hash of its content.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ivr.dialplan.schema import Plan
from ivr.dialplan.templating import render, template_names
from ivr.speech.audio import AudioFormat, encode_wav, inspect_wav, read_wav
from ivr.speech.tts import ENGINE, TtsService, default_service

DEFAULT_CACHE_DIR = Path("audio") / "cache"
# Bump when the way a prompt file is produced changes (filter, encoder): old entries are
# then simply never looked up again.
CACHE_LAYOUT = 1
# How many prompts' paths prompt_audio_async remembers.
MAX_SEEN = 10_000

# What names a prompt: text, language, format, rate, voice variant.
Prompt = tuple[str, str, AudioFormat, int | None, str | None]


@dataclass(frozen=True)
class BuildResult:
    """What ``build_static_prompts`` did: prompts rendered now and prompts found cached."""

    rendered: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        return self.rendered + self.cached

    def __add__(self, other: BuildResult) -> BuildResult:
        return BuildResult(self.rendered + other.rendered, self.cached + other.cached)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def static_prompts(plan: Plan) -> Iterator[str]:
    """The final text of every spoken prompt of ``plan`` that uses no template variable.

    Spoken prompts are each state's ``say``, its ``listen`` ``no_input``/``no_match`` and the
    plan's ``voicemail``; SMS texts are not spoken. Duplicates are yielded once.
    """
    return known_prompts(plan, {})


def known_prompts(plan: Plan, variables: Mapping[str, Any]) -> Iterator[str]:
    """The final text of every spoken prompt whose template reads only ``variables`` (e.g. a
    plan's defaults and configured values, known before any call: an inbound line's greeting).
    """
    sources: list[str] = []
    if plan.voicemail:
        sources.append(plan.voicemail)
    for state in plan.states.values():
        if state.say:
            sources.append(state.say)
        if state.listen is not None:
            sources.extend(t for t in (state.listen.no_input, state.listen.no_match) if t)
    seen: set[str] = set()
    for source in sources:
        if not template_names(source, plan.language) <= variables.keys():
            continue  # rendered per call, once its variables are known
        text, error = render(source, dict(variables), plan.language)
        if error is None and text and text not in seen:
            seen.add(text)
            yield text


class PromptCache:
    """Synthesized prompt files under one directory, shared safely between processes."""

    def __init__(
        self,
        directory: Path | str = DEFAULT_CACHE_DIR,
        service: TtsService | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._service = service
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        # Where the prompts this process has used are: a webhook's cache hit needs neither
        # the key's hash nor a thread (two trips per prompt, every webhook of a burst).
        self._seen: dict[Prompt, Path] = {}
        self._finding: dict[Prompt, asyncio.Future[Path]] = {}

    @property
    def service(self) -> TtsService:
        if self._service is None:
            self._service = default_service()
        return self._service

    def key(
        self,
        text: str,
        language: str,
        fmt: AudioFormat,
        rate: int | None = None,
        variant: str | None = None,
    ) -> str:
        """The sha256 naming a prompt: engine, resolved voice, rate, final text and format."""
        voice = self.service.voice_for(language, variant)
        identity = [
            CACHE_LAYOUT,
            ENGINE,
            voice,
            rate or self.service.rate,
            " ".join(text.split()),
            str(fmt),
        ]
        encoded = json.dumps(identity, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()

    def _path(self, key: str) -> Path:
        # Two-character fan-out keeps directories small when a campaign renders many prompts.
        return self.directory / key[:2] / f"{key}.wav"

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def lookup(
        self,
        text: str,
        language: str,
        fmt: AudioFormat = AudioFormat.MULAW,
        rate: int | None = None,
        variant: str | None = None,
    ) -> tuple[Path, bool]:
        """``(path, cached)``: the file for a prompt, rendering it first on a miss."""
        path = self._path(self.key(text, language, fmt, rate, variant))
        if path.is_file():
            self._count(hit=True)
            return path, True
        audio = self.service.render_sync(text, language, fmt, rate, variant)
        _write_atomically(path, audio)
        self._count(hit=False)
        return path, False

    def prompt_audio(
        self,
        text: str,
        language: str,
        fmt: AudioFormat = AudioFormat.MULAW,
        rate: int | None = None,
        variant: str | None = None,
    ) -> Path:
        """The WAV file saying ``text`` in ``fmt`` (blocking; rendered on a cache miss)."""
        return self.lookup(text, language, fmt, rate, variant)[0]

    async def prompt_audio_async(
        self,
        text: str,
        language: str,
        fmt: AudioFormat = AudioFormat.MULAW,
        rate: int | None = None,
        variant: str | None = None,
    ) -> Path:
        """Like :meth:`prompt_audio`, for the event loop: a prompt used before costs one stat;
        a first look-up runs in a thread, and a miss waits in the speech service's own queue,
        not in one of the loop's threads (a burst of renders must not starve the cache hits
        of other calls)."""
        prompt = (text, language, fmt, rate, variant)
        seen = self._seen.get(prompt)
        # A stat on the loop (microseconds, from the kernel's cache) instead of two trips to
        # a thread: the file of a prompt seen before is only looked at, never rendered here.
        if seen is not None and seen.is_file():
            self._count(hit=True)
            return seen
        # Sixty callers hearing the same greeting at once look it up (or render it) once.
        finding = self._finding.get(prompt)
        if finding is None:
            finding = asyncio.ensure_future(self._find_or_render(prompt))
            self._finding[prompt] = finding
            finding.add_done_callback(partial(self._found, prompt))
        else:
            self._count(hit=True)
        return await asyncio.shield(finding)

    def _found(self, prompt: Prompt, finding: asyncio.Future[Path]) -> None:
        self._finding.pop(prompt, None)
        if not finding.cancelled():
            finding.exception()  # retrieved here too: every waiter may have gone

    async def _find_or_render(self, prompt: Prompt) -> Path:
        key = await asyncio.to_thread(self.key, *prompt)
        path = self._path(key)
        if await asyncio.to_thread(path.is_file):
            self._count(hit=True)
        else:
            audio = await self.service.render(*prompt)
            await asyncio.to_thread(_write_atomically, path, audio)
            self._count(hit=False)
        if len(self._seen) >= MAX_SEEN:
            self._seen.clear()  # dynamic prompts (names, times) come and go
        self._seen[prompt] = path
        return path

    def is_cached(
        self,
        text: str,
        language: str,
        fmt: AudioFormat = AudioFormat.MULAW,
        rate: int | None = None,
        variant: str | None = None,
    ) -> bool:
        """Whether the prompt's file exists (blocking; nothing is rendered or counted)."""
        return self._path(self.key(text, language, fmt, rate, variant)).is_file()

    def build_static_prompts(
        self, plan: Plan, formats: tuple[AudioFormat, ...] = (AudioFormat.MULAW,)
    ) -> BuildResult:
        """Render every static prompt of ``plan`` in each of ``formats`` that is not cached."""
        result = BuildResult()
        for text in static_prompts(plan):
            for fmt in formats:
                _, cached = self.lookup(text, plan.language, fmt)
                result += BuildResult(rendered=0 if cached else 1, cached=1 if cached else 0)
        return result

    def prepare_recording(self, path: Path | str, fmt: AudioFormat = AudioFormat.MULAW) -> Path:
        """A recorded prompt in ``fmt``: the file itself when it already is, else a converted
        copy in the cache (converted once: keyed by the file's content hash).

        ValueError when the file is not a readable WAV file.
        """
        source = Path(path)
        data = source.read_bytes()
        if fmt.matches(inspect_wav(data, name=str(source))):
            return source
        digest = hashlib.sha256(
            json.dumps([CACHE_LAYOUT, "recording", str(fmt)]).encode() + data
        ).hexdigest()
        target = self._path(digest)
        if target.is_file():
            self._count(hit=True)
            return target
        pcm, rate = read_wav(data, name=str(source))
        _write_atomically(target, encode_wav(pcm, rate, fmt))
        self._count(hit=False)
        return target


_defaults: dict[Path, PromptCache] = {}
_defaults_lock = threading.Lock()


def default_cache() -> PromptCache:
    """The process-wide cache for ``$IVR_PROMPT_CACHE`` (default ``audio/cache``).

    One cache object per directory, all on the default speech service; the variable is read
    on each call so that a command run with another directory gets that directory.
    """
    directory = Path(os.environ.get("IVR_PROMPT_CACHE", str(DEFAULT_CACHE_DIR)))
    with _defaults_lock:
        if directory not in _defaults:
            _defaults[directory] = PromptCache(directory)
        return _defaults[directory]


def prompt_audio(text: str, language: str, fmt: AudioFormat = AudioFormat.MULAW) -> Path:
    """The cached WAV file saying ``text`` in ``language`` (rendered on a miss)."""
    return default_cache().prompt_audio(text, language, fmt)


def build_static_prompts(plan: Plan, cache: PromptCache | None = None) -> BuildResult:
    """Render the static prompts of ``plan`` (telephony format) into the cache."""
    return (cache or default_cache()).build_static_prompts(plan)


def prepare_recording(path: Path | str, fmt: AudioFormat = AudioFormat.MULAW) -> Path:
    """A recorded prompt file in ``fmt``, converting a wrong format once (see PromptCache)."""
    return default_cache().prepare_recording(path, fmt)
