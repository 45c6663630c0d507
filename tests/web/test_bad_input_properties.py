"""Random bad input on every webhook and API route, against a real server on real SQLite.

Each example is one HTTP request built from a valid one by dropping, changing and repeating
fields, re-encoding the body (JSON, Latin-1, multipart, raw bytes), relabelling its
Content-Type, and signing it correctly (with twilio's own RequestValidator), over the wrong
parameters, badly or not at all. The properties:

- no answer is a 5xx (and the connection is never dropped);
- an answer 4xx changed nothing: every table is compared before and after;
- the server still serves a valid call and a valid notification after the run.

Examples run in a worker thread (hypothesis drives a plain function); each request runs on
the test's event loop, where the server lives. ``derandomize`` makes every run the same
examples, so a failure in CI is a failure on the next run too. IVR_PROPERTY_EXAMPLES raises
the count for a longer hunt, IVR_PROPERTY_RANDOM=1 draws new examples.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port
from hypothesis import HealthCheck, given, settings
from multidict import MultiDict
from pytest_aiohttp import AiohttpServer
from twilio.request_validator import RequestValidator
from yarl import URL

from ivr.calls.service import CallService
from ivr.config import Settings
from ivr.store import Direction, Store
from ivr.telephony.twilio import SIGNATURE_HEADER
from ivr.telephony.twilio.urls import opaque
from ivr.web.app import AppParts, create_app
from ivr.web.keys import CALLS
from tests.conftest import DIALPLANS
from tests.telephony.fake_twilio_api import ACCOUNT, TOKEN, FakeTwilioApi
from tests.web.api_client import REMINDER
from tests.web.bad_input import API_REQUESTS, API_ROUTES, ApiRequest, Webhook, to_json, webhooks
from tests.web.conftest import CALLER, SHOP_LINE
from tests.web.snapshot import sqlite_snapshot

API_TOKEN = "property-api-token-0123456789"
EXAMPLES = int(os.environ.get("IVR_PROPERTY_EXAMPLES", "60"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The same examples on every run, so CI fails again where it failed; IVR_PROPERTY_RANDOM=1
    # explores new ones (a failure is then printed with a @reproduce_failure to keep).
    derandomize=not os.environ.get("IVR_PROPERTY_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SIGNER = RequestValidator(TOKEN)
T = TypeVar("T")


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    url: str
    server: TestServer
    http: aiohttp.ClientSession
    twilio: FakeTwilioApi
    database: str
    calls: list[tuple[str, str]] = field(default_factory=list)  # (reference, CallSid)
    message: tuple[str, str] = ("", "")  # an outbound SMS: (reference, MessageSid)
    notification: str = ""
    answers: Counter[int] = field(default_factory=Counter)
    fresh: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    @property
    def service(self) -> CallService:
        return self.server.app[CALLS]

    @property
    def store(self) -> Store:
        return self.service.s.store

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the server's loop from the hypothesis thread."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    async def send(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str]:
        skip = [] if "Content-Type" in headers else ["Content-Type"]
        async with self.http.request(
            method,
            URL(self.url + target, encoded=True),
            data=body,
            headers=headers,
            skip_auto_headers=skip,
        ) as response:
            return response.status, (await response.read()).decode("utf-8", "replace")

    async def checked(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> int:
        """Send one request; no 5xx, and a 4xx left every table as it was."""
        await self.service.drain()
        before = sqlite_snapshot(self.database)
        status, text = await self.send(method, target, body, headers)
        shown = f"{method} {target[:200]} -> {status}: {text[:300]}"
        assert status < 500, shown
        if 400 <= status < 500:
            await self.service.drain()
            assert sqlite_snapshot(self.database) == before, shown
            assert text.strip(), shown  # a refusal says why
        self.answers[status // 100] += 1
        return status

    async def turn_of(self, ref: str) -> int:
        async with self.store.read() as tx:
            call = await tx.calls.get(ref)
        return call.turn if call is not None else 1


async def start(
    tmp_path: Path, aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> Harness:
    """The app (Twilio dialect, JSON API on, no scheduler, no recognizer: nothing runs
    behind a request's back) against a local Twilio REST stand-in."""
    twilio = FakeTwilioApi()
    twilio_server = await aiohttp_server(twilio.app())
    twilio.base_url = str(twilio_server.make_url("")).rstrip("/")
    port = unused_port()
    url = f"http://127.0.0.1:{port}"
    values = Settings(
        provider="twilio",
        public_url=url,
        database_url=f"sqlite:///{tmp_path}/ivr.db",
        dialplans=DIALPLANS,
        audio_dir=tmp_path / "audio",
        var_dir=tmp_path / "var",
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_from="+12025550100",
        twilio_api_base=twilio.base_url,
        api_token=API_TOKEN,
    )
    parts = AppParts(background=False, warm_up=False, recognizer=None)
    server = await aiohttp_server(create_app(values, url, parts), port=port)
    return Harness(asyncio.get_running_loop(), url, server, http, twilio, f"{tmp_path}/ivr.db")


@pytest.fixture
async def harness(tmp_path: Path, aiohttp_server: AiohttpServer) -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as http:
        yield await start(tmp_path, aiohttp_server, http)


# -- webhooks -----------------------------------------------------------------------------


def signed(target: str, harness: Harness, params: Any) -> str:
    return str(SIGNER.compute_signature(harness.url + target, params))


async def new_call(harness: Harness, call_sid: str) -> str:
    """Start an inbound call at its first menu; its reference."""
    form = voice_form(call_sid)
    target = "/twilio/voice"
    headers = {SIGNATURE_HEADER: signed(target, harness, form)}
    status, text = await harness.send(
        "POST", target, urlencode(form).encode(), form_headers(headers)
    )
    assert status == 200, text
    async with harness.store.read() as tx:
        call = await tx.calls.get_by_sid(call_sid)
    assert call is not None
    assert "<Gather" in text
    harness.calls.append((call.id, call_sid))
    return call.id


def form_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/x-www-form-urlencoded"}


def voice_form(call_sid: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT,
        "From": CALLER,
        "To": SHOP_LINE,
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }


async def webhook_setup(harness: Harness) -> None:
    for n in range(2):
        await new_call(harness, f"CA{n:032x}")
    async with harness.store.transaction() as tx:
        message = await tx.sms.create(
            direction=Direction.OUTBOUND,
            from_number=SHOP_LINE,
            to_number=CALLER,
            body="Your order ships today.",
            provider_sid="SM" + "3" * 32,
        )
    harness.message = (message.id, "SM" + "3" * 32)


async def webhook_request(
    harness: Harness, route: str, hook: Webhook
) -> tuple[str, bytes | None, dict[str, str]]:
    """The request ``hook`` describes, resolved against the calls the server knows."""
    ref, sid = (
        harness.calls[hook.call % len(harness.calls)]
        if isinstance(hook.call, int)
        else (hook.call, "CA" + "e" * 32)
    )
    known = isinstance(hook.call, int)
    turn = await harness.turn_of(ref) if known else 1
    turns = {"current": turn, "previous": turn - 1, "next": turn + 1}
    query: dict[str, str] = {}
    if route in ("gather", "record", "no-input", "recognizing", "stream-ended"):
        query = {"call": ref, "turn": str(turns.get(hook.turn, hook.turn))}
    elif route in ("voice", "status") and hook.call != 3:
        query = {"call": ref}
    recording = f"{harness.twilio.base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{turn:032x}"
    if route == "recognizing":
        query.update(recording=opaque(recording), sid=f"RE{turn:032x}", waits="0")
    if route == "sms-status" and hook.call != 3:
        query = {"sms": harness.message[0] if known else ref}
    query.update(hook.query)
    call = {"CallSid": sid, "AccountSid": ACCOUNT}
    form = {
        "voice": voice_form(sid if known and hook.call != 3 else f"CA{next(harness.fresh):032x}"),
        "status": {**call, "CallStatus": "in-progress", "CallDuration": "3"},
        "gather": {**call, "Digits": "1"},
        "record": {
            **call,
            "RecordingUrl": recording,
            "RecordingSid": f"RE{turn:032x}",
            "RecordingDuration": "2",
        },
        "no-input": call,
        "stream-ended": call,
        "recognizing": call,
        "sms": {
            "MessageSid": f"SM{next(harness.fresh):032x}",
            "AccountSid": ACCOUNT,
            "From": CALLER,
            "To": SHOP_LINE,
            "Body": "HELP",
        },
        "sms-status": {
            "MessageSid": harness.message[1],
            "AccountSid": ACCOUNT,
            "MessageStatus": "delivered",
        },
    }[route]
    pairs = hook.changes.apply(form)
    target = f"/twilio/{route}" + (f"?{urlencode(query, quote_via=quote)}" if query else "")
    body: bytes | None
    if hook.encoding == "form":
        body = urlencode(pairs).encode()
    elif hook.encoding == "latin-1":
        body = "&".join(f"{k}={v}" for k, v in pairs).encode("latin-1", "replace")
    elif hook.encoding == "json":
        body = json.dumps(dict(pairs)).encode()
    elif hook.encoding == "multipart":
        parts = (
            f'--zz\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in pairs
        )
        body = ("".join(parts) + "--zz--\r\n").encode()
    else:
        body = hook.raw
    headers = {} if hook.content_type is None else {"Content-Type": hook.content_type}
    if hook.signature == "valid":
        headers[SIGNATURE_HEADER] = signed(target, harness, MultiDict(pairs))
    elif hook.signature == "empty":
        headers[SIGNATURE_HEADER] = signed(target, harness, {})
    elif hook.signature != "missing":
        headers[SIGNATURE_HEADER] = hook.signature
    return target, body, headers


WEBHOOK_ROUTES = [
    "voice",
    "status",
    "gather",
    "record",
    "no-input",
    "recognizing",
    "stream-ended",
    "sms",
    "sms-status",
]


@pytest.mark.parametrize("route", WEBHOOK_ROUTES)
async def test_bad_webhooks_are_refused_and_change_nothing(harness: Harness, route: str) -> None:
    await webhook_setup(harness)

    @PROPERTY
    @given(hook=webhooks(route))
    def one_request(hook: Webhook) -> None:
        async def send() -> None:
            target, body, headers = await webhook_request(harness, route, hook)
            await harness.checked("POST", target, body, headers)

        harness.run(send())  # one hop to the loop per example: each costs a thread switch

    await asyncio.to_thread(one_request)
    assert harness.answers[2], harness.answers  # some requests got through
    assert harness.answers[4], harness.answers
    # Still serving: a new call gets its menu and its first key press moves it.
    ref = await new_call(harness, "CA" + "f" * 32)
    keys = {"CallSid": "CA" + "f" * 32, "AccountSid": ACCOUNT, "Digits": "1"}
    target = f"/twilio/gather?call={ref}&turn=1"
    status, text = await harness.send(
        "POST",
        target,
        urlencode(keys).encode(),
        form_headers({SIGNATURE_HEADER: signed(target, harness, keys)}),
    )
    assert status == 200, text
    assert "turn=2" in text


# -- the JSON API -------------------------------------------------------------------------


async def api_setup(harness: Harness) -> None:
    body = json.dumps(
        {"to": CALLER, "plan": "appointment_reminder", "variables": REMINDER}
    ).encode()
    status, text = await harness.send("POST", "/api/v1/notifications", body, api_headers())
    assert status == 201, text
    harness.notification = json.loads(text)["id"]


def api_headers(
    authorization: str = "valid", content_type: str | None = "application/json"
) -> dict[str, str]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    if authorization == "valid":
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    elif authorization != "missing":
        headers["Authorization"] = authorization
    return headers


VALID_BODIES: dict[str, dict[str, Any] | None] = {
    "POST notifications": {
        "to": CALLER,
        "plan": "appointment_reminder",
        "variables": REMINDER,
        "idempotency_key": "k1",
    },
    "PUT preferences": {
        "timezone": "Europe/Berlin",
        "categories": {"marketing": {"opt_out": True}},
        "multiple_channels": False,
    },
    "PUT do-not-call": {"reason": "asked on the phone"},
    "POST campaigns": {
        "name": "November",
        "plan": "appointment_reminder",
        "rows": [{"to": CALLER, "variables": REMINDER}],
        "idempotency_key": "c1",
    },
}


def api_request(
    harness: Harness, request: ApiRequest
) -> tuple[str, str, bytes | None, dict[str, str]]:
    method, name = request.route.split(" ")
    ident = {"known": harness.notification, "unknown": "N-unknown"}.get(
        request.ident, request.ident
    )
    target = {
        "notifications": "/api/v1/notifications",
        "campaigns": "/api/v1/campaigns",
        "notification": f"/api/v1/notifications/{ident}",
        "preferences": f"/api/v1/contacts/{request.number}/preferences",
        "contact": f"/api/v1/contacts/{request.number}",
        "do-not-call": f"/api/v1/do-not-call/{request.number}",
    }[name]
    if method == "GET" and request.query:
        target += "?" + urlencode(request.query, quote_via=quote)
    valid = VALID_BODIES.get(request.route)
    body: bytes | None = None
    if valid is not None:
        document: Any = {
            k: v for k, v in {**valid, **request.change}.items() if k not in request.drop
        }
        if request.spliced is not None:
            document[request.spliced[0]] = request.spliced[1]
        if request.whole is not None:
            document = request.whole
        if request.encoding == "json":
            body = to_json(document).encode("utf-8", "surrogatepass")
        elif request.encoding == "latin-1":
            body = to_json(document).encode("latin-1", "replace")
        elif request.encoding == "raw":
            body = request.raw
    return method, target, body, api_headers(request.authorization, request.content_type)


@pytest.mark.parametrize("route", API_ROUTES)
async def test_bad_api_requests_are_refused_and_change_nothing(
    harness: Harness, route: str
) -> None:
    await api_setup(harness)

    @PROPERTY
    @given(request=API_REQUESTS[route])
    def one_request(request: ApiRequest) -> None:
        harness.run(harness.checked(*api_request(harness, request)))

    await asyncio.to_thread(one_request)
    assert harness.answers[4], harness.answers
    # Still serving: a new notification is created and shown.
    body = json.dumps(
        {"to": "+12025550143", "plan": "appointment_reminder", "variables": REMINDER}
    ).encode()
    status, text = await harness.send("POST", "/api/v1/notifications", body, api_headers())
    assert status == 201, text
    shown, _ = await harness.send(
        "GET", f"/api/v1/notifications/{json.loads(text)['id']}", None, api_headers()
    )
    assert shown == 200
