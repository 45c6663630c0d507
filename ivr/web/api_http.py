"""The HTTP side of the JSON API: the bearer token, JSON bodies in, error bodies out.

Every ``/api/v1/*`` request except the OpenAPI document needs ``Authorization: Bearer
<IVR_API_TOKEN>``. A server without a token answers 503 instead of being open: an API that
places calls must never be reachable by accident.

Error bodies have two shapes: ``{"error": "..."}`` for a request that is wrong as a whole
(400 an empty, non-UTF-8 or malformed body or a JSON document that is not an object, 401,
404, 409, 413 a body over the limit, 415 a body that is not ``application/json``, 503) and
``{"errors": [{"field": ..., "message": ...}]}`` (422) naming every field that cannot be
accepted.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.outbound.requests import RequestError, e164, request_error
from ivr.store import NotificationStatus
from ivr.web.keys import SERVICES

API_PREFIX = "/api/v1"
OPENAPI_PATH = API_PREFIX + "/openapi.json"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Model = TypeVar("Model", bound=BaseModel)


class NotificationQuery(BaseModel):
    """``GET /api/v1/notifications`` query: filters, and ``after`` = the previous page's next."""

    model_config = ConfigDict(extra="forbid")

    status: NotificationStatus | None = None
    plan: str | None = None
    to: str | None = None
    after: str | None = None
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def problems_response(problems: dict[str, str]) -> web.Response:
    errors = [{"field": field, "message": message} for field, message in problems.items()]
    return web.json_response({"errors": errors}, status=422)


def _unauthorized(message: str, challenge: str) -> web.Response:
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = challenge
    return response


@web.middleware
async def require_api_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer-token check for the API; RequestError from a handler becomes a 422."""
    if not request.path.startswith(API_PREFIX + "/") or request.path == OPENAPI_PATH:
        return await handler(request)
    token = request.app[SERVICES].settings.api_token
    if not token:
        return error_response(503, "the API is disabled: set IVR_API_TOKEN to enable it")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _unauthorized("missing bearer token", 'Bearer realm="ivr"')
    # Constant time, so the response time does not tell how much of a guess was right.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return _unauthorized("invalid bearer token", 'Bearer realm="ivr", error="invalid_token"')
    try:
        return await handler(request)
    except RequestError as exc:
        return problems_response(exc.problems)


def _json_error(error: type[web.HTTPError], message: str) -> web.HTTPError:
    return error(text=json.dumps({"error": message}), content_type="application/json")


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def json_body(request: web.Request, *, optional: bool = False) -> Any:
    """The request's JSON document; an empty body is ``{}`` when ``optional``.

    A body that cannot be a JSON document is refused as a whole, before any field is looked
    at: too large (413), not ``application/json`` (415), empty, not UTF-8 (RFC 8259 allows
    nothing else) or malformed (400).
    """
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        # aiohttp's text names the limit: "Maximum request body size 262144 exceeded."
        raise web.HTTPRequestEntityTooLarge(
            0,
            text=json.dumps({"error": f"the body is too large: {exc.text}"}),
            content_type="application/json",
        ) from exc
    if not raw.strip():
        if optional:
            return {}
        raise _json_error(web.HTTPBadRequest, "the body is empty: send a JSON object")
    if not _is_json(request.content_type):
        raise _json_error(
            web.HTTPUnsupportedMediaType,
            f"the body is {request.content_type}: send it as application/json",
        )
    return json_document(raw)


def json_document(raw: bytes) -> Any:
    """``raw`` (a body known to be non-empty JSON) parsed; a 400 naming why it cannot be.

    Not UTF-8 (RFC 8259 allows nothing else), malformed, nested too deeply, an integer over
    Python's 4300 digits, or a number JSON has not (NaN, Infinity, 1e999): each was a 500
    from ``json.loads`` or answered with invalid JSON.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _json_error(
            web.HTTPBadRequest,
            f"the body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
        ) from exc
    try:
        document = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise _json_error(web.HTTPBadRequest, "the body is nested too deeply") from None
    except ValueError as exc:
        # JSONDecodeError, or an integer over Python's 4300 digits, or what the parsers refuse.
        raise _json_error(web.HTTPBadRequest, f"the body is not valid JSON: {exc}") from exc
    if _holds_nul(document):
        # PostgreSQL stores no NUL in text or JSONB: refused here, not a 500 at the commit.
        raise _json_error(web.HTTPBadRequest, "the body holds a NUL character (\\u0000)")
    return document


def _holds_nul(document: Any) -> bool:
    """Whether a string (key or value) anywhere in the parsed ``document`` holds NUL."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _no_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which RFC 8259 JSON has not (and we could not
    write back in a response)."""
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e999) is refused, not infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


async def parse_body(request: web.Request, model: type[Model], *, optional: bool = False) -> Model:
    """The body validated as ``model``; RequestError (422) naming each bad field.

    A document that is not an object (an array, a string, a number, null) is a malformed
    body, a 400 like malformed JSON: it has no fields to name.
    """
    document = json_object(await json_body(request, optional=optional))
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise request_error(exc) from exc


def json_object(document: Any) -> dict[str, Any]:
    """``document`` if it is a JSON object, else a 400 naming what it is instead."""
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "a number")
        raise _json_error(web.HTTPBadRequest, f"the body is {kind}: send a JSON object")
    return document


def lenient_e164(raw: str, field: str) -> str:
    """An E.164 number from a URL, whose ``+`` may have been decoded as a space.

    In a query string ``+`` means a space, and some clients and proxies decode a path that
    way too; an integrator who wrote ``+12025550123`` meant the number.
    """
    number = raw.strip()
    if raw[:1].isspace() and number[:1].isdigit():
        number = "+" + number
    return e164(number, field)


def path_number(request: web.Request) -> str:
    """The E.164 number in the path (``{number}``): ``+`` as is, as ``%2B`` or as a space."""
    return lenient_e164(request.match_info["number"], "number")
