"""The simulator's REST API: the parts of Twilio's ``2010-04-01`` API the product uses.

Calls (create, fetch, hang up), Messages (create, fetch) and Recordings (fetch as WAV or
JSON, delete), with Basic authentication by account sid and auth token, Twilio's field
validation and error codes, and Twilio's JSON shapes. Mountable at any prefix: the base URL
the client used is taken from the request, so ``RecordingUrl`` points back to it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import phonenumbers
from aiohttp import web
from multidict import MultiDict

from ivr.telephony.simulator.state import ApiRequest
from ivr.telephony.twilio import API_VERSION

if TYPE_CHECKING:
    from ivr.telephony.simulator.network import Simulator

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
_MACHINE_DETECTION = {"enable": "Enable", "detectmessageend": "DetectMessageEnd"}
MAX_TIMEOUT = 600  # Twilio rings for at most ten minutes
MAX_BODY = 1600  # characters in one SMS request
_SIMULATOR: web.AppKey[Simulator] = web.AppKey("simulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request Twilio would refuse: rendered as Twilio's error JSON."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "status": status,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }


def _error_response(error: ApiError) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else None
    body = error_body(error.status, error.code, error.message)
    return web.json_response(body, status=error.status, headers=headers)


def _simulator(request: web.Request) -> Simulator:
    return request.config_dict[_SIMULATOR]


@web.middleware
async def _twilio_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth on every route, and every refusal in Twilio's JSON error format."""
    try:
        _authenticate(request)
        account = request.match_info.get("account")
        if account is not None and account != _simulator(request).account_sid:
            raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
        return await handler(request)
    except ApiError as error:
        return _error_response(error)
    except web.HTTPNotFound:
        return _error_response(
            ApiError(404, 20404, f"The requested resource {request.path} was not found")
        )
    except web.HTTPMethodNotAllowed:
        return _error_response(ApiError(405, 20004, "Method not allowed"))


@web.middleware
async def _log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Remember every API request: tests read who placed or looked up which call."""
    response = await handler(request)
    _simulator(request).api_requests.append(
        ApiRequest(request.method, request.path, response.status)
    )
    return response


def _authenticate(request: web.Request) -> None:
    simulator = _simulator(request)
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    valid = scheme.lower() == "basic" and hmac.compare_digest(
        f"{user}:{password}".encode(), f"{simulator.account_sid}:{simulator.auth_token}".encode()
    )
    if not valid:
        raise ApiError(401, 20003, "Authentication Error - invalid username")


def _api_base(request: web.Request) -> str:
    """The base URL the client used (scheme, host and any mount prefix)."""
    return str(request.url).split(f"/{API_VERSION}/", 1)[0]


async def _form(request: web.Request) -> MultiDict[str]:
    """The form fields of a request (text only: the API takes no file uploads)."""
    form = await request.post()
    return MultiDict((key, value) for key, value in form.items() if isinstance(value, str))


def _number(form: MultiDict[str], field: str, missing: int, invalid: int) -> str:
    value = form.get(field, "").strip()
    if not value:
        raise ApiError(400, missing, f"A '{field}' phone number is required.")
    possible = False
    if _E164.match(value):
        try:
            possible = phonenumbers.is_possible_number(phonenumbers.parse(value))
        except phonenumbers.NumberParseException:
            possible = False
    if not possible:
        raise ApiError(400, invalid, f"The '{field}' number {value} is not a valid phone number.")
    return value


def _url(form: MultiDict[str], field: str, code: int, required: bool) -> str | None:
    value = form.get(field, "").strip()
    if not value:
        if required:
            raise ApiError(400, code, f"{field} parameter is required.")
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, code, f"{field} is not a valid URL: {value}")
    return value


def _method(form: MultiDict[str], field: str) -> str:
    value = form.get(field, "POST").strip().upper() or "POST"
    if value not in ("GET", "POST"):
        raise ApiError(400, 20001, f"{field} must be GET or POST, not {value!r}")
    return value


def _call_events(form: MultiDict[str]) -> list[str]:
    # Repeated parameters (what Twilio's helper libraries send) or space-separated values.
    events = [event for value in form.getall("StatusCallbackEvent", []) for event in value.split()]
    unknown = sorted(set(events) - _CALL_EVENTS)
    if unknown:
        raise ApiError(
            400,
            20001,
            f"StatusCallbackEvent {', '.join(unknown)} is not one of "
            "initiated, ringing, answered, completed",
        )
    return events or ["completed"]


def _timeout(form: MultiDict[str]) -> int:
    raw = form.get("Timeout", "60").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, 20001, f"Timeout must be a positive whole number, not {raw!r}")
    return min(int(raw), MAX_TIMEOUT)


async def create_call(request: web.Request) -> web.Response:
    fields = await _form(request)
    to = _number(fields, "To", 21201, 21211)
    from_ = _number(fields, "From", 21213, 21212)
    url = _url(fields, "Url", 21205, required=True)
    assert url is not None
    detection_raw = fields.get("MachineDetection", "").strip()
    detection = _MACHINE_DETECTION.get(detection_raw.lower()) if detection_raw else None
    if detection_raw and detection is None:
        raise ApiError(
            400,
            20001,
            f"MachineDetection must be Enable or DetectMessageEnd, not {detection_raw!r}",
        )
    call = _simulator(request).place_call(
        to=to,
        from_=from_,
        url=url,
        api_base=_api_base(request),
        method=_method(fields, "Method"),
        status_callback=_url(fields, "StatusCallback", 21609, required=False),
        status_callback_method=_method(fields, "StatusCallbackMethod"),
        status_callback_events=_call_events(fields),
        machine_detection=detection,
        timeout=_timeout(fields),
        form=list(fields.items()),
    )
    return web.json_response(call.to_json(), status=201)


async def list_calls(request: web.Request) -> web.Response:
    """``GET Calls.json?To=...``: newest first, one page (``PageSize``, default 50)."""
    to = request.query.get("To")
    try:
        size = int(request.query.get("PageSize", "50"))
    except ValueError:
        raise ApiError(400, 20001, "PageSize must be a number") from None
    calls = [c for c in _simulator(request).calls.values() if to is None or c.to == to]
    calls.sort(key=lambda c: c.created, reverse=True)
    page = [c.to_json() for c in calls[: max(1, min(size, 1000))]]
    return web.json_response({"calls": page, "page": 0, "page_size": len(page)})


async def fetch_call(request: web.Request) -> web.Response:
    call = _simulator(request).calls.get(request.match_info["sid"])
    if call is None:
        raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
    return web.json_response(call.to_json())


async def update_call(request: web.Request) -> web.Response:
    simulator = _simulator(request)
    call = simulator.calls.get(request.match_info["sid"])
    if call is None:
        raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
    status = (await _form(request)).get("Status", "").strip()
    if status not in ("completed", "canceled"):
        raise ApiError(
            400, 20001, "the simulator updates a call's Status only: completed or canceled"
        )
    simulator.end_call(call, "completed" if status == "completed" else "canceled")
    return web.json_response(call.to_json())


async def create_message(request: web.Request) -> web.Response:
    fields = await _form(request)
    to = _number(fields, "To", 21604, 21211)
    from_ = _number(fields, "From", 21603, 21212)
    body = fields.get("Body", "")
    if not body.strip():
        raise ApiError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY:
        raise ApiError(
            400, 21617, f"The concatenated message body exceeds the {MAX_BODY} character limit."
        )
    message = _simulator(request).send_message(
        to=to,
        from_=from_,
        body=body,
        form=list(fields.items()),
        status_callback=_url(fields, "StatusCallback", 21609, required=False),
    )
    return web.json_response(message.to_json(), status=201)


async def fetch_message(request: web.Request) -> web.Response:
    message = _simulator(request).messages.get(request.match_info["sid"])
    if message is None:
        raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
    return web.json_response(message.to_json())


def _recording_name(request: web.Request) -> tuple[str, str]:
    sid, dot, extension = request.match_info["name"].partition(".")
    return sid, extension.lower() if dot else ""


async def fetch_recording(request: web.Request) -> web.StreamResponse:
    sid, extension = _recording_name(request)
    recording = _simulator(request).recordings.get(sid)
    if recording is None:
        raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
    if extension == "json":
        return web.json_response(recording.to_json())
    if extension not in ("", "wav"):
        raise ApiError(404, 20404, f"the simulator serves recordings as WAV only, not {extension}")
    return web.Response(body=recording.wav(), content_type="audio/x-wav")


async def delete_recording(request: web.Request) -> web.Response:
    sid, _extension = _recording_name(request)
    if not _simulator(request).recordings.delete(sid):
        raise ApiError(404, 20404, f"The requested resource {request.path} was not found")
    return web.Response(status=204)


def build_rest_app(simulator: Simulator) -> web.Application:
    app = web.Application(middlewares=[_log_requests, _twilio_errors])
    app[_SIMULATOR] = simulator
    account = f"/{API_VERSION}/Accounts/{{account}}"
    app.router.add_post(f"{account}/Calls.json", create_call)
    app.router.add_get(f"{account}/Calls.json", list_calls)
    app.router.add_get(f"{account}/Calls/{{sid}}.json", fetch_call)
    app.router.add_post(f"{account}/Calls/{{sid}}.json", update_call)
    app.router.add_post(f"{account}/Messages.json", create_message)
    app.router.add_get(f"{account}/Messages/{{sid}}.json", fetch_message)
    app.router.add_get(f"{account}/Recordings/{{name}}", fetch_recording)
    app.router.add_delete(f"{account}/Recordings/{{name}}", delete_recording)

    async def stop_simulator(_app: web.Application) -> None:
        await simulator.stop()

    app.on_cleanup.append(stop_simulator)
    return app
