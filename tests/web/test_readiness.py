"""Start-up warm-up: /readyz, prompts rendered before the first call, and prompts rendered as
soon as their text is known (outbound greetings before dialing, post-lookup prompts)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpServer

from ivr.calls.services import Services
from ivr.calls.turn_audio import first_prompts
from ivr.config import Settings
from ivr.dialplan.session import Session
from ivr.speech.asr import shutdown_pools
from ivr.web.app import create_app
from ivr.web.readiness import READINESS, startup_prompts, warm_voice_activity
from tests.conftest import DIALPLANS
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN, FakeTwilioApi
from tests.web.conftest import Server, start_server
from tests.web.test_twilio_webhooks import CALL_SID, action, path_of, twiml, voice_form


async def ready(server: Server) -> dict[str, object]:
    """Poll /readyz until it answers 200 (the test's own timeout bounds the wait)."""
    while True:
        async with server.http.get(server.url + "/readyz") as response:
            report: dict[str, object] = await response.json()
            if response.status == 200:
                return report
            assert response.status == 503
            assert report["status"] == "starting"
        await asyncio.sleep(0.1)


def settings_for(tmp_path: Path, url: str, twilio_base: str, **more: object) -> Settings:
    return Settings(
        provider="twilio",
        public_url=url,
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from="+12025550100",
        twilio_api_base=twilio_base,
        **more,  # type: ignore[arg-type]
    )


async def test_readyz_is_503_until_the_warm_up_is_done_then_everything_is_warm(
    tmp_path: Path, aiohttp_server: AiohttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.web.readiness")
    shutdown_pools()  # decoder processes are per test process: start them from cold here
    gate = asyncio.Event()
    url = f"http://127.0.0.1:{unused_port()}"
    app = create_app(settings_for(tmp_path, url, "http://127.0.0.1:9"), url)
    app[READINESS].wait_also(gate.wait())
    port = int(url.rsplit(":", 1)[1])
    app_server = await aiohttp_server(app, port=port)
    async with aiohttp.ClientSession() as http:
        server = Server(url, app_server, FakeTwilioApi(), http)
        async with http.get(url + "/readyz") as response:
            assert response.status == 503
            assert (await response.json())["status"] == "starting"
        async with http.get(url + "/healthz") as response:
            assert response.status == 200  # liveness is not readiness
            assert (await response.json())["ready"] is False
        gate.set()
        report = await ready(server)
    assert report["status"] == "ready"
    steps = report["steps"]
    assert isinstance(steps, dict)
    assert "pocketsphinx:en-us" in steps["recognition"]
    assert "vosk:" in steps["recognition"]  # the Korean model from PyPI loaded
    assert steps["voice activity"] == "not needed (IVR_TWILIO_MEDIA=record)"
    services = server.calls.s
    assert services.prompts.service.worker_pid is not None
    jobs = startup_prompts(services)
    # Static prompts, and the inbound line's greeting (its variable has a default).
    texts = {job.text for job in jobs}
    assert "Sorry, I did not hear you." in texts
    assert any(t.startswith("Thank you for calling Northwind Shop. To check") for t in texts)
    assert report["prompts"] == {"done": len(jobs), "total": len(jobs)}
    assert all(services.prompts.is_cached(job.text, job.language) for job in jobs)
    logged = [r.getMessage() for r in caplog.records if r.name == "ivr.web.readiness"]
    assert f"warm-up: {len(jobs)} of {len(jobs)} prompts ready" in logged  # progress
    assert [m for m in logged if m.startswith("ready: warm-up took")]  # what `ivr serve` logs


async def test_after_readiness_the_first_webhook_renders_no_prompt(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    async with aiohttp.ClientSession() as http:
        server = await start_server(tmp_path, aiohttp_server, http, warm_up=True)
        await ready(server)
        prompts = server.calls.s.prompts
        renders, misses, hits = prompts.service.renders, prompts.misses, prompts.hits
        doc = await twiml(await server.post("/twilio/voice", voice_form()))
    play = doc.find("Gather/Play")
    assert play is not None  # the greeting as audio, not a <Say> fallback
    assert play.text
    assert prompts.service.renders == renders  # the TTS worker was not asked
    assert prompts.misses == misses
    assert prompts.hits > hits


async def fake_twilio_watching(
    aiohttp_server: AiohttpServer, on_create_call: Callable[[], Awaitable[None]]
) -> tuple[FakeTwilioApi, TestServer]:
    twilio = FakeTwilioApi()
    app = twilio.app()

    @web.middleware
    async def watch(request: web.Request, handler: web._Handler) -> web.StreamResponse:
        if request.path.endswith("/Calls.json") and request.method == "POST":
            await on_create_call()
        return await handler(request)

    app.middlewares.append(watch)
    twilio_server = await aiohttp_server(app)
    twilio.base_url = str(twilio_server.make_url("")).rstrip("/")
    return twilio, twilio_server


async def test_an_outbound_greeting_is_rendered_before_the_call_is_dialed(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    seen_cached: list[bool] = []
    holder: dict[str, Server] = {}
    variables = {"name": "Quentin", "clinic": "Maple Clinic", "when": "2026-12-09T15:30"}
    greeting: list[tuple[str, str]] = []

    async def check_cache() -> None:
        prompts = holder["server"].calls.s.prompts
        for text, language in greeting:
            seen_cached.append(await asyncio.to_thread(prompts.is_cached, text, language))

    twilio, _ = await fake_twilio_watching(aiohttp_server, check_cache)
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings_for(tmp_path, url, twilio.base_url), url)
    app_server = await aiohttp_server(app, port=port)
    async with aiohttp.ClientSession() as http:
        server = holder["server"] = Server(url, app_server, twilio, http)
        await ready(server)
        calls = server.calls
        async with calls.s.store.transaction() as tx:
            call = await calls.record_outbound_call(
                tx, "+12025550166", "appointment_reminder", variables
            )
        plan = calls.s.plans.plans["appointment_reminder"]
        greeting[:] = [
            (say.text, say.language)
            for say in first_prompts(plan, Session.from_json(call.session_json))
        ]
        assert any("Quentin" in text for text, _ in greeting)  # the templated greeting
        assert any("Maple Clinic" in text for text, _ in greeting)
        dynamic = [(t, lang) for t, lang in greeting if "Quentin" in t]
        assert not any(calls.s.prompts.is_cached(t, lang) for t, lang in dynamic)
        placed = await calls.dial(call)
    assert placed.provider_sid is not None
    assert len(twilio.requests("POST", "/Calls.json")) == 1
    assert seen_cached == [True] * len(greeting)  # every first prompt, before the dial request


async def test_the_prompt_after_a_lookup_is_rendered_before_the_webhook_answers(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    async def order(_: web.Request) -> web.Response:
        return web.json_response({"status": "out for delivery"})

    orders = web.Application()
    orders.router.add_get("/orders/{number}", order)
    orders_url = str((await aiohttp_server(orders)).make_url("")).rstrip("/")
    variables = {"order_status_line": {"orders_api": orders_url}}
    async with aiohttp.ClientSession() as http:
        server = await start_server(
            tmp_path, aiohttp_server, http, warm_up=True, plan_variables=variables
        )
        await ready(server)
        doc = await twiml(await server.post("/twilio/voice", voice_form()))
        form = {"CallSid": CALL_SID, "AccountSid": ACCOUNT}
        doc = await twiml(
            await server.post(path_of(action(doc, "Gather"), server), {**form, "Digits": "1"})
        )
        gather_path = path_of(action(doc, "Gather"), server)
        prompts = server.calls.s.prompts
        told = "Order four two zero seven is out for delivery."
        assert not prompts.is_cached(told, "en-US")  # a dynamic prompt: not warmed up
        answer = await server.post(gather_path, {**form, "Digits": "4207#"})
        doc = await twiml(answer)
        assert prompts.is_cached(told, "en-US")
        plays = [p.text or "" for p in doc.iter("Play")]
        assert len(plays) == 2  # the looked-up status, then "To check another order ..."
        assert not list(doc.iter("Say"))  # no prompt fell back to <Say>
        async with http.get(plays[0]) as audio:
            assert audio.status == 200
    assert re.search(r"turn=\d+", action(doc, "Gather"))


@pytest.mark.parametrize("kind", ["silero", "webrtc"])
async def test_streamed_calls_warm_their_voice_activity_detector(tmp_path: Path, kind: str) -> None:
    settings = settings_for(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    stream = settings.model_copy(update={"twilio_media": "stream", "vad": kind})
    said = await warm_voice_activity(cast(Services, SimpleNamespace(settings=stream)))
    assert said.startswith(f"{kind}:")  # the detector and its setting, e.g. silero:0.5
    assert said.endswith(" detector loaded")
