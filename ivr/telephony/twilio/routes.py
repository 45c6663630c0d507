"""The Twilio webhooks: verify, parse, hand to the call service, answer TwiML.

Every ``/twilio/*`` request must carry a valid ``X-Twilio-Signature`` over the public URL
and the POST parameters (403 otherwise, before anything is read or written), and name our
account (403). A malformed webhook, a JSON body, a CallSid that is not the URL's call or a
turn ahead of the call is a 400 naming the field; an unknown call reference at an action URL
is a 404. None of them changes anything. Status callbacks of calls and messages this server
does not know (a call it declined) are answered 204 and only logged: any other answer is a
failed webhook in the provider's debugger.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from ivr.calls.service import UnknownCall, WrongCall
from ivr.dialplan.vocabulary import CallerHungUp, NoInput
from ivr.outbound.opt_outs import apply_opt_out
from ivr.outbound.policy import OptOutAction, opt_out_for_sms
from ivr.store import Direction
from ivr.telephony.twilio import (
    SIGNATURE_HEADER,
    WebhookError,
    body_type_problem,
    engine_answered_by,
    foreign_account,
    parse_call_sid,
    parse_call_status,
    parse_gather,
    parse_incoming_sms,
    parse_record,
    parse_sms_status,
    parse_voice,
    verify_signature,
)
from ivr.telephony.twilio.twiml import render_message
from ivr.telephony.twilio.urls import STREAM_PATH, from_opaque
from ivr.telephony.twilio.webhooks import FORM_TYPE
from ivr.web.keys import CALLS, SERVICES

log = logging.getLogger(__name__)

FORM = web.RequestKey("twilio_form", MultiDictProxy)
TWIML = "application/xml"

HELP_WORDS = frozenset({"HELP", "INFO"})
STOPPED_REPLY = (
    "You will no longer receive optional calls or messages from us. Reply START to undo."
)
STARTED_REPLY = "You will receive our calls and messages again. Reply STOP to stop them."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def verify_twilio_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/twilio/") or request.path == STREAM_PATH:
        # The Media Streams upgrade is a GET signed over its wss:// URL: checked there.
        return await handler(request)
    services = request.app[SERVICES]
    form = await _read_form(request)
    url = services.base_url + request.raw_path
    token = services.settings.twilio_auth_token or ""
    if not verify_signature(token, url, form, request.headers.get(SIGNATURE_HEADER)):
        log.warning("rejected %s: bad or missing %s", request.path, SIGNATURE_HEADER)
        raise web.HTTPForbidden(text="invalid Twilio signature")
    if request.method == "POST" and (
        problem := body_type_problem(request.content_type, request.body_exists)
    ):
        raise web.HTTPBadRequest(text=problem)
    if other := foreign_account(form, services.settings.twilio_account_sid):
        log.warning("rejected %s: AccountSid %s is not this server's account", request.path, other)
        raise web.HTTPForbidden(text="AccountSid: not this server's account")
    if problem := _nul_problem(form):
        raise web.HTTPBadRequest(text=problem)
    request[FORM] = form
    return await handler(request)


async def _read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The POST form; empty for a body that is not form-encoded.

    Only a form body is parsed: a multipart body would be read (files and all) before the
    signature is checked, and aiohttp raises on one without its boundary. Such a body is
    refused by ``body_type_problem`` once the signature (over no parameters) is checked. A
    form in an unknown charset or not in the one it names is a 400 naming the problem.
    """
    if request.content_type != FORM_TYPE:
        return MultiDictProxy(MultiDict())
    try:
        return await request.post()
    except (UnicodeDecodeError, LookupError) as exc:
        raise web.HTTPBadRequest(text=f"the form cannot be decoded: {exc}") from None


def _nul_problem(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> str | None:
    """Twilio sends no NUL, and PostgreSQL stores none: such a field is refused before anything
    is written (it was a 500 at the commit on PostgreSQL)."""
    for name, value in form.items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            return f"{name[:40]!r}: holds a NUL character"
    return None


def _form(request: web.Request) -> MultiDictProxy[str]:
    form: MultiDictProxy[str] = request[FORM]
    return form


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type=TWIML)


def _turn(request: web.Request) -> tuple[str, int]:
    ref = request.query.get("call", "")
    try:
        return ref, int(request.query.get("turn", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="turn: missing or not a number") from None


async def _handle(request: web.Request, work: Callable[[], Awaitable[str]]) -> web.Response:
    try:
        return _twiml(await work())
    except (WebhookError, WrongCall) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except UnknownCall as exc:
        log.warning("%s: unknown call reference %s", request.path, exc)
        raise web.HTTPNotFound(text="unknown call reference") from exc


async def voice(request: web.Request) -> web.Response:
    calls = request.app[CALLS]

    async def work() -> str:
        hook = parse_voice(_form(request))
        if ref := request.query.get("call"):
            return await calls.answer_outbound(
                ref, hook.call_sid, engine_answered_by(hook.answered_by)
            )
        return await calls.start_inbound(hook.call_sid, hook.from_number, hook.to)

    return await _handle(request, work)


async def gather(request: web.Request) -> web.Response:
    ref, turn = _turn(request)
    typed = request.query.get("typed", "")

    async def work() -> str:
        hook = parse_gather(_form(request))
        calls = request.app[CALLS]
        call = await calls.check_webhook(ref, hook.call_sid, turn)
        return await calls.on_keys(ref, turn, typed + hook.digits, first=not typed, known=call)

    return await _handle(request, work)


async def record(request: web.Request) -> web.Response:
    ref, turn = _turn(request)
    calls = request.app[CALLS]

    async def work() -> str:
        hook = parse_record(_form(request))
        call = await calls.check_webhook(ref, hook.call_sid, turn)
        if hook.hung_up:
            return await calls.on_event(ref, turn, CallerHungUp(), known=call)
        if hook.key is not None:
            return await calls.on_keys(ref, turn, hook.key, first=True, known=call)
        return await calls.on_recording(
            ref, turn, hook.recording_url, hook.recording_sid, known=call
        )

    return await _handle(request, work)


async def recognizing(request: web.Request) -> web.Response:
    """The keep-alive redirect of a recording whose recognition outlasted the budget."""
    ref, turn = _turn(request)
    recording, recording_sid = request.query.get("recording"), request.query.get("sid")
    if not recording or not recording_sid:
        raise web.HTTPBadRequest(text="recording, sid: missing")
    try:
        waits = int(request.query.get("waits", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="waits: missing or not a number") from None
    try:
        recording_url = from_opaque(recording)
    except ValueError:
        raise web.HTTPBadRequest(text="recording: not a reference this server wrote") from None
    calls = request.app[CALLS]

    async def work() -> str:
        call = await calls.check_webhook(ref, parse_call_sid(_form(request)), turn)
        return await calls.on_recording(ref, turn, recording_url, recording_sid, waits, call)

    return await _handle(request, work)


async def no_input(request: web.Request) -> web.Response:
    ref, turn = _turn(request)
    calls = request.app[CALLS]

    async def work() -> str:
        call = await calls.check_webhook(ref, parse_call_sid(_form(request)), turn)
        return await calls.on_event(ref, turn, NoInput(), known=call)

    return await _handle(request, work)


async def status(request: web.Request) -> web.Response:
    async def work() -> str:
        hook = parse_call_status(_form(request))
        ref = request.query.get("call")
        try:
            await request.app[CALLS].on_status(
                ref, hook.call_sid, hook.status, hook.answered_by, hook.duration
            )
        except UnknownCall:
            # A call this server declined (no plan answers its number) or never placed.
            log.info("status %s of unknown call %s ignored", hook.status, ref or hook.call_sid)
        return ""

    await _handle(request, work)
    return web.Response(status=204)


async def incoming_sms(request: web.Request) -> web.Response:
    services = request.app[SERVICES]

    async def work() -> str:
        hook = parse_incoming_sms(_form(request))
        change = opt_out_for_sms(hook.body)
        async with services.store.transaction() as tx:
            _, first_delivery = await tx.sms.get_or_create_by_sid(
                provider_sid=hook.message_sid,
                direction=Direction.INBOUND,
                from_number=hook.from_number,
                to_number=hook.to,
                body=hook.body,
            )
            if first_delivery and change is not None:
                await apply_opt_out(tx, hook.from_number, change)
        if change is not None:
            opted_out = change.action == OptOutAction.OPT_OUT
            return render_message(STOPPED_REPLY if opted_out else STARTED_REPLY)
        keyword = hook.body.strip().strip(".!?").upper()
        return render_message(services.settings.sms_help_text if keyword in HELP_WORDS else "")

    return await _handle(request, work)


# Twilio statuses the store does not keep (SmsStatus): a message read (WhatsApp, RCS) was
# delivered; one partially delivered (some segments lost) arrived, with a note. They were a 500.
_STORED_AS: dict[str, tuple[str, str | None]] = {
    "read": ("delivered", None),
    "partially_delivered": ("delivered", "partially delivered"),
}


async def sms_status(request: web.Request) -> web.Response:
    services = request.app[SERVICES]

    async def work() -> str:
        hook = parse_sms_status(_form(request))
        async with services.store.transaction() as tx:
            ref = request.query.get("sms")
            if ref and not await tx.sms.set_sid(ref, hook.message_sid):
                if await tx.sms.get(ref) is not None:
                    raise WebhookError("MessageSid", f"{hook.message_sid} is not message {ref}")
                log.info("status of unknown message %s (%s) ignored", ref, hook.message_sid)
            error = f"error {hook.error_code}" if hook.error_code else None
            status, note = _STORED_AS.get(hook.status, (hook.status, None))
            await tx.sms.update_status(status, sid=hook.message_sid, error=error or note)
        return ""

    await _handle(request, work)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.middlewares.append(verify_twilio_signature)
    app.router.add_post("/twilio/voice", voice)
    app.router.add_post("/twilio/gather", gather)
    app.router.add_post("/twilio/record", record)
    app.router.add_post("/twilio/recognizing", recognizing)
    app.router.add_post("/twilio/no-input", no_input)
    app.router.add_post("/twilio/status", status)
    app.router.add_post("/twilio/sms", incoming_sms)
    app.router.add_post("/twilio/sms-status", sms_status)
