"""Start-up warm-up and readiness: ``/readyz`` answers 503 until the first call would be fast.

``/healthz`` is liveness (the process answers); ``/readyz`` is readiness. The warm-up runs in
the background once the server listens:

- the TTS worker the calls use is started;
- the recognizers load their engines (PocketSphinx worker processes with a decoder built and
  every grammar compiled, Vosk models loaded) for every listening state of every plan;
- every prompt known before any call is rendered into the cache: the static ones, and those
  whose variables all have a plan default or a configured value (an inbound line's greeting),
  by several TTS workers at once, with progress logged.

Webhooks that arrive before readiness are served, never held or refused: a caller already
on the line is better answered a little slower than not at all. Point the provider (or the
load balancer) at a server once ``/readyz`` answers 200; ``ivr serve`` logs ``ready``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from aiohttp import web

from ivr.calls.recognition import WarmableRecognizer
from ivr.calls.services import Services
from ivr.dialplan.schema import Plan
from ivr.dialplan.variables import coerce_value
from ivr.dialplan.vocabulary import Listen
from ivr.speech import vad
from ivr.speech.prompts import known_prompts
from ivr.speech.tts import TtsService
from ivr.speech.warmup import PromptJob, render_prompts

log = logging.getLogger(__name__)

# TTS workers rendering the prompts at start-up (the calls' own worker is one of them).
MAX_PROMPT_WORKERS = 4


def prompt_workers() -> int:
    return max(1, min(MAX_PROMPT_WORKERS, os.cpu_count() or 1))


class Readiness:
    """Where the warm-up is; ``ready`` once every step has finished (or failed, logged)."""

    def __init__(self) -> None:
        self.ready = False
        self.started = time.monotonic()
        self.seconds: float | None = None
        self.steps: dict[str, str] = {}
        self.prompts = {"done": 0, "total": 0}
        self._also: list[Awaitable[Any]] = []

    def wait_also(self, awaitable: Awaitable[Any]) -> None:
        """Readiness also waits for ``awaitable`` (a deployment's own check; tests)."""
        self._also.append(awaitable)

    def report(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "starting",
            "steps": dict(self.steps),
            "prompts": dict(self.prompts),
            "seconds": self.seconds,
        }

    async def _step(self, name: str, work: Awaitable[str]) -> None:
        self.steps[name] = "running"
        try:
            self.steps[name] = await work
        except Exception as exc:  # a broken engine is logged; the calls fall back (keys, <Say>)
            log.exception("warm-up: %s failed", name)
            self.steps[name] = f"failed: {type(exc).__name__}: {exc}"

    async def warm_up(self, services: Services, renderers: int | None = None) -> None:
        """Run every step, then mark the server ready and log it."""
        await asyncio.gather(
            self._step("prompts", self._prompts(services, renderers or prompt_workers())),
            self._step("recognition", _recognition(services)),
            self._step("voice activity", warm_voice_activity(services)),
        )
        for awaitable in self._also:
            await awaitable
        self.seconds = round(time.monotonic() - self.started, 3)
        self.ready = True
        log.info("ready: warm-up took %.1f s (%s)", self.seconds, _summary(self.steps))

    async def _prompts(self, services: Services, renderers: int) -> str:
        main = services.prompts.service
        await asyncio.to_thread(main.start)
        jobs = startup_prompts(services)
        self.prompts["total"] = len(jobs)
        if not jobs:
            return "TTS worker started, no prompts to render"
        extra = [
            TtsService(rate=main.rate, voices=main.voice_overrides)
            for _ in range(min(renderers, len(jobs)) - 1)
        ]
        step = max(1, len(jobs) // 10)

        def progress(done: int, total: int) -> None:
            self.prompts["done"] = done
            if done % step == 0 or done == total:
                log.info("warm-up: %d of %d prompts ready", done, total)

        stop = threading.Event()
        try:
            result = await asyncio.to_thread(
                render_prompts, services.prompts.directory, jobs, [main, *extra], progress, stop
            )
        finally:
            stop.set()
            for service in extra:
                await asyncio.to_thread(service.close)
        return (
            f"TTS worker started; {result.rendered} prompts rendered, {result.cached} "
            f"already cached, by {1 + len(extra)} TTS workers"
        )


def _summary(steps: dict[str, str]) -> str:
    return "; ".join(f"{name}: {state}" for name, state in steps.items())


def known_variables(plan: Plan, configured: dict[str, Any]) -> dict[str, Any]:
    """The plan's variables whose value is known before any call: configured or defaults."""
    values: dict[str, Any] = {}
    for name, spec in plan.variables.items():
        value = configured.get(name, spec.default)
        if value is None:
            continue
        try:
            values[name] = coerce_value(spec.type, value)
        except ValueError:
            continue  # reported when a call starts (coerce_variables)
    return values


def startup_prompts(services: Services) -> list[PromptJob]:
    """Every prompt of every plan that can be rendered before any call, once each."""
    jobs: dict[PromptJob, None] = {}
    for plan_id in sorted(services.plans.plans):
        plan = services.plans.plans[plan_id]
        known = known_variables(plan, services.settings.plan_variables.get(plan_id, {}))
        for text in known_prompts(plan, known):
            jobs[PromptJob(text, plan.language)] = None
    return list(jobs)


def plan_listens(plans: Sequence[Plan]) -> list[Listen]:
    return [
        Listen(name, state.listen, plan.language)
        for plan in plans
        for name, state in plan.states.items()
        if state.listen is not None
    ]


async def _recognition(services: Services) -> str:
    recognizer = services.recognizer
    if recognizer is None:
        return "no recognizer (keypad only)"
    if not isinstance(recognizer, WarmableRecognizer):
        return "nothing to warm up"
    done = await recognizer.warm_up(plan_listens(list(services.plans.plans.values())))
    return "; ".join(done) or "no language with a recognizer"


async def warm_voice_activity(services: Services) -> str:
    """Live calls' detector, loaded off the loop (Silero's first ONNX session takes ~1 s)."""
    if services.settings.twilio_media != "stream":
        return "not needed (IVR_TWILIO_MEDIA=record)"
    return f"{await vad.warm_up(services.settings.vad)} detector loaded"


READINESS = web.AppKey("readiness", Readiness)


async def readyz(request: web.Request) -> web.Response:
    readiness = request.app[READINESS]
    return web.json_response(readiness.report(), status=200 if readiness.ready else 503)
