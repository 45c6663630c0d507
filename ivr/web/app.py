"""The aiohttp application: resources opened in ``cleanup_ctx``, routes registered per area.

``create_app(settings)`` is all a deployment needs; tests inject a provider (a REST client
pointed at a local fake) and a recognizer through ``AppParts``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from ivr.calls.live_calls import LiveCalls
from ivr.calls.recognition import OfflineRecognizer
from ivr.calls.service import CallService
from ivr.calls.services import Services, SpeechRecognizer, plan_hashes
from ivr.config import Settings
from ivr.dialplan.loader import PlanSet, load_plans_or_raise
from ivr.integrations.lookups import async_http_lookup
from ivr.outbound.campaigns import CampaignService
from ivr.outbound.result_webhooks import ResultWebhooks
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.service import NotificationService
from ivr.speech.prompts import PromptCache
from ivr.store import Store
from ivr.store.db import normalize_database_url, sqlite_file
from ivr.telephony.provider import Provider
from ivr.telephony.simulator import Simulator
from ivr.telephony.twilio import TwilioRestClient
from ivr.telephony.twilio import routes as twilio_routes
from ivr.telephony.twilio import stream as twilio_stream
from ivr.telephony.twilio.dialect import TwilioDialect
from ivr.web import api_routes, audio_routes
from ivr.web.console import setup_console
from ivr.web.keys import CALLS, LIVE, SERVICES
from ivr.web.readiness import READINESS, Readiness, readyz
from ivr.web.signing import load_secret_key

log = logging.getLogger(__name__)

# Webhooks and API requests are small; a larger body is refused (413) before it is read.
MAX_BODY_BYTES = 256 * 1024

ProviderFactory = Callable[[aiohttp.ClientSession, Settings], Provider]


def twilio_provider(session: aiohttp.ClientSession, settings: Settings) -> Provider:
    return TwilioRestClient(
        session,
        settings.twilio_account_sid or "",
        settings.twilio_auth_token or "",
        api_base=settings.twilio_api_base,
    )


@dataclass
class AppParts:
    """What may be swapped in: the provider's client and the speech recognizer."""

    provider: ProviderFactory = twilio_provider
    recognizer: SpeechRecognizer | None = field(default_factory=OfflineRecognizer)
    # Where the simulator finds the recordings scenarios name (``audio: 3_jackson_0.wav``).
    simulator_audio: Sequence[Path] = ()
    # Run the outbound scheduler and result-webhook sender in this process.
    background: bool = True
    # Warm up at start-up (TTS worker, recognizers, prompts; see readiness.py); without it
    # the server is ready at once and everything starts on first use.
    warm_up: bool = True


@dataclass
class Outbound:
    notifications: NotificationService
    scheduler: Scheduler
    webhooks: ResultWebhooks
    campaigns: CampaignService


OUTBOUND = web.AppKey("outbound", Outbound)


def worker_name() -> str:
    """Who holds a lease: unique per process, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


SIMULATOR = web.AppKey("simulator", Simulator)
SIMULATOR_ACCOUNT = "AC" + "0" * 32


def _with_simulator(
    app: web.Application, settings: Settings, base_url: str, parts: AppParts
) -> Settings:
    """Mount the simulator's REST API at /simulator and point the Twilio client at it.

    The server then talks to it exactly as to Twilio, over HTTP, signatures included.
    """
    settings = settings.model_copy(
        update={
            "twilio_account_sid": settings.twilio_account_sid or SIMULATOR_ACCOUNT,
            "twilio_auth_token": settings.twilio_auth_token or new_auth_token(),
            "twilio_api_base": base_url.rstrip("/") + "/simulator",
        }
    )
    simulator = Simulator(
        settings.twilio_account_sid or "",
        settings.twilio_auth_token or "",
        api_base=settings.twilio_api_base,
        audio_dirs=[settings.audio_dir, *parts.simulator_audio],
    )
    app.add_subapp("/simulator", simulator.rest_app())
    app[SIMULATOR] = simulator
    return settings


def announce_recognition(recognizer: SpeechRecognizer, plans: PlanSet) -> None:
    """Pick the engine of every plan language now, so that a language served keypad-only is
    one warning at start-up (naming the model and the command to get it), not a surprise
    during the first call. The models load in the warm-up (readiness.py)."""
    for language in sorted({plan.language for plan in plans.plans.values()}):
        if recognizer.supports(language):
            log.info("speech recognition for %s: ready", language)


def _open_store(settings: Settings) -> Store:
    if (file := sqlite_file(normalize_database_url(settings.database_url))) is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    return Store.open(settings.database_url)


def create_app(settings: Settings, base_url: str, parts: AppParts | None = None) -> web.Application:
    parts = parts or AppParts()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    readiness = app[READINESS] = Readiness()
    if settings.provider == "simulator":
        settings = _with_simulator(app, settings, base_url, parts)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        plans = load_plans_or_raise([settings.dialplans], settings.audio_dir)
        store = _open_store(settings)
        revision = await store.upgrade()
        log.info("database %s at revision %s", store.url.render_as_string(), revision)
        log.info("%s", settings.describe_call_windows())
        if parts.recognizer is not None:
            announce_recognition(parts.recognizer, plans)
        http = aiohttp.ClientSession()
        secret = load_secret_key(settings.secret_key, settings.var_dir)
        services = Services(
            settings=settings,
            base_url=base_url.rstrip("/"),
            plans=plans,
            store=store,
            provider=parts.provider(http, settings),
            lookup=functools.partial(async_http_lookup, http),
            prompts=PromptCache(settings.audio_dir / "cache"),
            secret=secret,
            recognizer=parts.recognizer,
            hashes=plan_hashes(plans),
        )
        app[SERVICES] = services
        dialect = TwilioDialect(
            services.base_url,
            secret,
            settings.audio_url_ttl,
            streaming=settings.twilio_media == "stream",
        )
        calls = app[CALLS] = CallService(services, dialect)
        app[LIVE] = LiveCalls(calls)
        outbound = app[OUTBOUND] = Outbound(
            NotificationService(store, plans, settings),
            Scheduler(calls, worker_name()),
            ResultWebhooks(
                store, http, (settings.webhook_secret or "").encode() or services.secret
            ),
            CampaignService(store, plans, settings),
        )
        tasks = []
        if parts.warm_up:
            tasks.append(asyncio.create_task(readiness.warm_up(services), name="warm-up"))
        else:
            readiness.ready = True
        if parts.background:
            tasks += [
                asyncio.create_task(outbound.scheduler.run(), name="scheduler"),
                asyncio.create_task(outbound.webhooks.run(1.0), name="result-webhooks"),
            ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await calls.drain()
            await calls.recognitions.close()
            await http.close()
            await store.close()

    app.cleanup_ctx.append(services_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    twilio_routes.add_routes(app)
    twilio_stream.add_routes(app)
    api_routes.add_routes(app)
    audio_routes.add_routes(app)
    setup_console(app)
    return app


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response(
        {
            "status": "ok",
            "plans": sorted(services.plans.plans),
            "provider": services.settings.provider,
            "ready": request.app[READINESS].ready,
        }
    )


def new_auth_token() -> str:
    return secrets.token_hex(16)
