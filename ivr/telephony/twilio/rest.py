"""The Twilio REST client: places calls, sends SMS, reads calls, fetches and deletes recordings.

It implements ``provider.Provider`` over an injected ``aiohttp.ClientSession`` against a
configurable ``api_base``: ``https://api.twilio.com``, a compatible provider, or the simulator.

Retries, with exponential backoff (capped, jittered, bounded in attempts):

- a connection that could not be made (refused, DNS, connect timeout): the request never
  left, so every request is retried, creates included;
- HTTP 429 and 5xx: retried, waiting ``Retry-After`` when the answer carries one (longer
  than ``RetryPolicy.max_retry_after`` gives up at once, as a retryable error);
- a timeout or a broken connection after the request was sent: reads and deletes are
  idempotent and are retried. A create is not: Twilio may have created the call or the
  message and only the answer was lost, and a second POST would ring the person twice.
  It raises ``AmbiguousCreate`` instead, and the caller reconciles (the status callback of
  a call that exists arrives carrying the reference put in its URL). A 504 to a create is
  ambiguous for the same reason: a gateway gave up waiting, not Twilio;
- any other 4xx is final: ``ProviderError`` with ``retryable=False`` and Twilio's error
  ``code``, ``message`` and ``more_info`` from its JSON body.

A recording is fetched as ``RecordingUrl + ".wav"`` with the account's Basic auth, only from
the API's own origin (credentials never go to a host a webhook names), up to a size limit.
Twilio can answer 404 for a moment right after announcing a recording, so a 404 there is
retried too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from ivr.telephony.provider import (
    CALL_STATUSES,
    MESSAGE_STATUSES,
    AmbiguousCreate,
    CallInfo,
    CallStatus,
    CreatedResource,
    MessageInfo,
    MessageStatus,
    ProviderError,
)

DEFAULT_API_BASE = "https://api.twilio.com"
API_VERSION = "2010-04-01"
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
_JSON_LIMIT = 1024 * 1024
# Calls to one number since an attempt was recorded: a handful at most.
FIND_PAGE_SIZE = 50
_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
_JSON = {"Accept": "application/json"}

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds before retry number ``retry`` (1 = the first): doubling, capped, and
        randomized over its upper half so that many clients do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class _Reply:
    status: int
    retry_after: str | None
    body: bytes


class _TooLarge(ProviderError):
    pass


class TwilioRestClient:
    """``Provider`` for Twilio's REST API (2010-04-01) and APIs compatible with it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_recording_bytes: int = 8 * 1024 * 1024,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("the account SID and the auth token are both required")
        self._session = session
        # Built by hand: aiohttp.BasicAuth is deprecated and its replacement is recent.
        # aiohttp drops this header when a redirect leaves the origin (recording media).
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._form_headers = {**_FORM, "Authorization": f"Basic {credentials}"}
        self._headers = {**_JSON, "Authorization": f"Basic {credentials}"}
        self._base = api_base.rstrip("/")
        self._origin = URL(self._base).origin()
        self._account = f"{self._base}/{API_VERSION}/Accounts/{quote(account_sid, safe='')}"
        self._retry = retry or RetryPolicy()
        # Connect timeouts surface as ConnectionTimeoutError (the request never left);
        # read timeouts as SocketTimeoutError (it may have been received). The overall
        # deadline only guards against a server that trickles bytes forever.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._deadline = connect_timeout + 4 * read_timeout
        self._max_recording_bytes = max_recording_bytes
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def place_call(
        self,
        *,
        to: str,
        from_number: str,
        answer_url: str,
        status_url: str,
        ring_timeout: int = 30,
        detect_machine: bool = True,
    ) -> CallInfo:
        form = [
            ("To", to),
            ("From", from_number),
            ("Url", answer_url),
            ("Method", "POST"),
            ("StatusCallback", status_url),
            ("StatusCallbackMethod", "POST"),
            *(("StatusCallbackEvent", event) for event in CALL_EVENTS),
            ("Timeout", str(ring_timeout)),
        ]
        if detect_machine:
            form.append(("MachineDetection", "DetectMessageEnd"))
        what = f"placing a call to {to}"
        reply = await self._send("POST", f"{self._account}/Calls.json", what, form, "call")
        try:
            return _call_info(json.loads(reply.body))
        except ValueError as exc:
            raise AmbiguousCreate(
                f"{what}: HTTP {reply.status} but the answer is unreadable ({exc}); "
                "the call may exist",
                resource="call",
                status=reply.status,
            ) from exc

    async def send_sms(
        self, *, to: str, from_number: str, body: str, status_url: str | None = None
    ) -> MessageInfo:
        form = [("To", to), ("From", from_number), ("Body", body)]
        if status_url is not None:
            form.append(("StatusCallback", status_url))
        what = f"sending an SMS to {to}"
        reply = await self._send("POST", f"{self._account}/Messages.json", what, form, "message")
        try:
            return _message_info(json.loads(reply.body))
        except ValueError as exc:
            raise AmbiguousCreate(
                f"{what}: HTTP {reply.status} but the answer is unreadable ({exc}); "
                "the message may exist",
                resource="message",
                status=reply.status,
            ) from exc

    async def get_call(self, call_sid: str) -> CallInfo:
        what = f"reading call {call_sid}"
        reply = await self._send("GET", f"{self._account}/Calls/{_segment(call_sid)}.json", what)
        try:
            return _call_info(json.loads(reply.body))
        except ValueError as exc:
            raise ProviderError(f"{what}: unreadable answer ({exc})", retryable=False) from exc

    async def find_calls(self, to: str, since: datetime) -> list[CallInfo]:
        # Twilio filters by number; its date filters are whole days, so the moment is ours.
        query = urlencode({"To": to, "PageSize": str(FIND_PAGE_SIZE)})
        what = f"listing calls to {to}"
        reply = await self._send("GET", f"{self._account}/Calls.json?{query}", what)
        try:
            calls = [_call_info(item) for item in _list(json.loads(reply.body), "calls")]
        except ValueError as exc:
            raise ProviderError(f"{what}: unreadable answer ({exc})", retryable=False) from exc
        return [c for c in calls if c.created_at is None or c.created_at >= since]

    async def fetch_recording(self, recording_url: str) -> bytes:
        try:
            same_origin = URL(recording_url).origin() == self._origin
        except ValueError:
            same_origin = False
        if not same_origin:
            raise ProviderError(
                f"recording {recording_url!r} is not on {self._base}: not sending credentials",
                retryable=False,
            )
        parts = urlsplit(recording_url)
        if not parts.path.endswith(".wav"):
            parts = parts._replace(path=parts.path + ".wav")
        url = urlunsplit(parts)
        reply = await self._send(
            "GET",
            url,
            f"fetching recording {url}",
            limit=self._max_recording_bytes,
            retry_missing=True,
        )
        return reply.body

    async def delete_recording(self, recording_sid: str) -> None:
        url = f"{self._account}/Recordings/{_segment(recording_sid)}.json"
        await self._send("DELETE", url, f"deleting recording {recording_sid}", missing_ok=True)

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        form: Sequence[tuple[str, str]] | None = None,
        creates: CreatedResource | None = None,
        *,
        limit: int = _JSON_LIMIT,
        missing_ok: bool = False,
        retry_missing: bool = False,
    ) -> _Reply:
        body = urlencode(form).encode() if form is not None else None
        failure: ProviderError | None = None
        delay = 0.0
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1:
                await self._sleep(delay)
            delay = self._retry.backoff(attempt, self._rng)
            try:
                reply = await self._attempt(method, url, body, limit)
            except aiohttp.InvalidURL as exc:
                raise ProviderError(f"{what}: invalid URL {url!r}", retryable=False) from exc
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                failure = ProviderError(f"{what}: cannot connect: {_describe(exc)}", retryable=True)
                continue
            except (TimeoutError, aiohttp.ClientError, _TooLarge) as exc:
                if creates is not None:
                    raise AmbiguousCreate(
                        f"{what}: sent, but no usable answer came ({_describe(exc)}); "
                        f"the {creates} may exist",
                        resource=creates,
                    ) from exc
                if isinstance(exc, _TooLarge):
                    raise ProviderError(f"{what}: {exc.message}", retryable=False) from exc
                failure = ProviderError(f"{what}: no answer: {_describe(exc)}", retryable=True)
                continue
            status = reply.status
            if 200 <= status < 300 or (status == 404 and missing_ok):
                return reply
            retry_after = _seconds_until(reply.retry_after)
            retryable = status == 429 or status >= 500
            error = _twilio_error(what, reply, retryable, retry_after)
            if creates is not None and status == 504:
                raise AmbiguousCreate(
                    f"{error.message}; the {creates} may exist", resource=creates, status=status
                )
            if not (retryable or (status == 404 and retry_missing)):
                raise error
            if retry_after is not None and retry_after > self._retry.max_retry_after:
                raise error
            failure = error
            if retry_after is not None:
                delay = retry_after
        assert failure is not None
        raise ProviderError(
            f"{failure.message} (gave up after {self._retry.attempts} attempts)",
            retryable=failure.retryable,
            status=failure.status,
            code=failure.code,
            more_info=failure.more_info,
            retry_after=failure.retry_after,
        )

    async def _attempt(self, method: str, url: str, body: bytes | None, limit: int) -> _Reply:
        headers = self._form_headers if body is not None else self._headers
        async with (
            asyncio.timeout(self._deadline),
            self._session.request(
                method, url, data=body, headers=headers, timeout=self._timeout
            ) as response,
        ):
            declared = response.content_length
            if declared is not None and declared > limit:
                raise _TooLarge(f"answer of {declared} bytes is over {limit}", retryable=False)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise _TooLarge(f"answer is over {limit} bytes", retryable=False)
                chunks.append(chunk)
            return _Reply(response.status, response.headers.get("Retry-After"), b"".join(chunks))


def _segment(sid: str) -> str:
    if not sid:
        raise ValueError("an empty SID")
    return quote(sid, safe="")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _seconds_until(retry_after: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _twilio_error(
    what: str, reply: _Reply, retryable: bool, retry_after: float | None
) -> ProviderError:
    """The error a non-2xx answer means, with Twilio's code and message when it sent them."""
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(reply.body)
    fields: Mapping[str, Any] = data if isinstance(data, dict) else {}
    code = fields.get("code")
    message = fields.get("message")
    more_info = fields.get("more_info")
    text = f"{what}: HTTP {reply.status}"
    if isinstance(code, int) and not isinstance(code, bool):
        text += f", Twilio error {code}"
    else:
        code = None
    if isinstance(message, str) and message:
        text += f": {message}"
    return ProviderError(
        text,
        retryable=retryable,
        status=reply.status,
        code=code,
        more_info=more_info if isinstance(more_info, str) else None,
        retry_after=retry_after,
    )


def _object(data: object) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return cast(Mapping[str, object], data)


def _text(data: Mapping[str, object], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise ValueError(f"{name!r} is missing or not text")


def _optional_int(data: Mapping[str, object], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        return int(value)
    raise ValueError(f"{name!r} is not a whole number")


def _call_info(data: object) -> CallInfo:
    call = _object(data)
    status = _text(call, "status")
    if status not in CALL_STATUSES:
        raise ValueError(f"unknown call status {status!r}")
    answered_by = call.get("answered_by")
    return CallInfo(
        sid=_text(call, "sid"),
        status=cast(CallStatus, status),
        to=_text(call, "to", required=False),
        from_number=_text(call, "from", required=False),
        direction=_text(call, "direction", required=False),
        duration=_optional_int(call, "duration"),
        answered_by=answered_by if isinstance(answered_by, str) else None,
        created_at=_optional_time(call, "date_created"),
    )


def _optional_time(data: Mapping[str, object], key: str) -> datetime | None:
    """Twilio's RFC 2822 timestamps (``Tue, 24 Nov 2026 10:00:00 +0000``)."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: {value!r} is not an RFC 2822 time") from exc


def _list(data: object, key: str) -> list[object]:
    items = _object(data).get(key)
    if not isinstance(items, list):
        raise ValueError(f"{key}: missing or not a list")
    return items


def _message_info(data: object) -> MessageInfo:
    message = _object(data)
    status = _text(message, "status")
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    error_message = message.get("error_message")
    return MessageInfo(
        sid=_text(message, "sid"),
        status=cast(MessageStatus, status),
        to=_text(message, "to", required=False),
        from_number=_text(message, "from", required=False),
        error_code=_optional_int(message, "error_code"),
        error_message=error_message if isinstance(error_message, str) else None,
    )
