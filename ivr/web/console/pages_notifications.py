"""Notifications: a paged, filtered list, and one notification with everything it did.

One notification's page shows its request (variables as text), each attempt's call as a
timeline (robot prompts with a player for their audio, caller answers with the recognized
text and confidence, keys, state changes), its SMS with their delivery status and its
result-webhook deliveries.

A prompt's audio is rendered on demand as 8 kHz PCM WAV (what browsers play; the telephone
copy is mu-law, which they do not) into the prompt cache, then the player is redirected to
the server's own signed, expiring ``/audio`` URL for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.calls.turn_audio import audio_path
from ivr.speech.audio import AudioFormat
from ivr.speech.tts import TtsError
from ivr.store import CallRecord, NotificationRecord, NotificationStatus, SmsRecord
from ivr.store import WebhookDeliveryRecord as Delivery
from ivr.store.console_queries import NotificationFilter, notification_page, person_name
from ivr.web import app as web_app
from ivr.web.console.render import render
from ivr.web.console.transcript import Entry, prompt_events, timeline
from ivr.web.keys import SERVICES
from ivr.web.signing import signed_path

PAGE_SIZE = 50
CAMPAIGN_CHOICES = 50  # the newest campaigns offered as a filter (a link may name any other)
STATUSES = [s.value for s in NotificationStatus]


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message)


def _filters(request: web.Request) -> tuple[NotificationFilter, dict[str, str]]:
    """The list's filters from the query; 400 naming an unknown status."""
    args = {
        k: v.strip() for k, v in request.query.items() if k in ("status", "plan", "to", "campaign")
    }
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise _bad_request(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
    to = args.get("to") or None
    if to is not None and not to.startswith("+"):
        to = "+" + to.lstrip()  # a "+" typed in a query string arrives as a space
    where = NotificationFilter(
        status=status,
        plan_id=args.get("plan") or None,
        to_number=to,
        campaign_id=args.get("campaign") or None,
    )
    return where, args


async def index(request: web.Request) -> web.StreamResponse:
    where, args = _filters(request)
    before = request.query.get("before") or None
    after = request.query.get("after") or None
    services = request.config_dict[SERVICES]
    async with services.store.read() as tx:
        page = await notification_page(tx, where, before=before, after=after, limit=PAGE_SIZE)
    campaigns = request.config_dict[web_app.OUTBOUND].campaigns
    choices = {c.id: c.name for c in await campaigns.list(limit=CAMPAIGN_CHOICES)}
    if where.campaign_id and where.campaign_id not in choices:
        chosen = await campaigns.get(where.campaign_id)
        choices[where.campaign_id] = chosen.name if chosen else where.campaign_id
    return render(
        request,
        "notifications.html",
        page=page,
        args=args,
        statuses=STATUSES,
        plans=sorted(services.plans.plans),
        campaigns=choices,
    )


@dataclass(frozen=True)
class Attempt:
    number: int
    call: CallRecord
    entries: list[Entry]
    sms: list[SmsRecord]


async def detail(request: web.Request) -> web.StreamResponse:
    ref = request.match_info["id"]
    services = request.config_dict[SERVICES]
    async with services.store.read() as tx:
        notification: NotificationRecord | None = await tx.notifications.get(ref)
        if notification is None:
            raise web.HTTPNotFound(text=f"no notification {ref!r}")
        calls = await tx.calls.for_notification(ref)
        events = {call.id: await tx.events.list(call.id) for call in calls}
        messages = list(await tx.sms.list_for(notification_id=ref))
        deliveries: list[Delivery] = list(await tx.webhooks.for_notification(ref))
    campaign = None
    if notification.campaign_id:
        campaign = await request.config_dict[web_app.OUTBOUND].campaigns.get(
            notification.campaign_id
        )
    attempts = [
        Attempt(i, call, timeline(events[call.id]), [m for m in messages if m.call_id == call.id])
        for i, call in enumerate(calls, start=1)
    ]
    return render(
        request,
        "notification.html",
        n=notification,
        campaign=campaign,
        name=person_name(notification.variables),
        variables=sorted(notification.variables.items()),
        attempts=attempts,
        sms=messages,
        deliveries=deliveries,
    )


async def _prompt_file(request: web.Request, data: dict[str, Any], kind: str) -> str:
    services = request.config_dict[SERVICES]
    audio_dir = services.settings.audio_dir
    if kind == "Say":
        file = await services.prompts.prompt_audio_async(
            str(data.get("text", "")), str(data.get("language", "en-US")), AudioFormat.PCM8K
        )
    else:
        recording = audio_dir / str(data.get("path", ""))
        if not recording.resolve().is_relative_to(audio_dir.resolve()):
            raise web.HTTPNotFound(text="no such recording")
        file = await asyncio.to_thread(
            services.prompts.prepare_recording, recording, AudioFormat.PCM8K
        )
    return audio_path(audio_dir, file)


async def prompt_audio(request: web.Request) -> web.StreamResponse:
    """A prompt of a call as audio: 307 to its signed /audio URL (same origin, no host)."""
    call_id = request.match_info["call"]
    try:
        event_id = int(request.match_info["event"])
    except ValueError:
        raise web.HTTPNotFound(text="no such prompt") from None
    services = request.config_dict[SERVICES]
    async with services.store.read() as tx:
        events = prompt_events(await tx.events.list(call_id))
    event = events.get(event_id)
    if event is None:
        raise web.HTTPNotFound(text=f"call {call_id!r} has no prompt {event_id}")
    try:
        path = await _prompt_file(request, event.data, event.kind)
    except (TtsError, OSError, ValueError) as exc:
        raise web.HTTPServiceUnavailable(text=f"the prompt could not be rendered: {exc}") from exc
    expires = int(time.time() + services.settings.audio_url_ttl)
    raise web.HTTPTemporaryRedirect(signed_path(services.secret, path, expires))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/notifications", index),
        web.get("/notifications/{id}", detail),
        web.get("/audio/{call}/{event}", prompt_audio),
    ]
