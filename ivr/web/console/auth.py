"""Console sign-in: the API token or a configured user, a signed session cookie, CSRF tokens.

The session is a cookie the server signs (HMAC-SHA256 with a key derived from the server's
secret key), so every worker process accepts it without shared state. It is HttpOnly,
SameSite=Strict, Secure when the public URL is https, and carries:

- who signed in (a user name, or none for the API token) and until when;
- a fingerprint of the credential used: changing the token or a user's password, or removing
  the user, ends their sessions on the next request;
- the CSRF token every POST must send back (form field ``csrf`` or header ``X-CSRF-Token``).

Nothing under /console is readable without a session except the sign-in page and the static
assets: a page answers 303 to the sign-in form, an event stream or a fragment (paths under
``/console/events/`` and ``/console/fragments/``, or a request accepting only JSON or event
streams) answers 401, since a redirect means nothing to EventSource or fetch().
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from ivr.config import Settings
from ivr.web.console.passwords import verify_password
from ivr.web.keys import SERVICES

PREFIX = "/console"
SIGN_IN = PREFIX + "/sign-in"
SIGN_OUT = PREFIX + "/sign-out"
STATIC = PREFIX + "/static/"
SESSION_COOKIE = "ivr_console"
# The sign-in form's own CSRF token (login CSRF: nobody signs a visitor in as themselves).
SIGN_IN_COOKIE = "ivr_console_signin"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
# Failed sign-ins allowed per client address within the window before 429.
MAX_FAILURES = 10
FAILURE_WINDOW = 300.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConsoleSession:
    user: str | None  # None: signed in with the API token
    expires: int
    csrf: str
    fingerprint: str

    @property
    def who(self) -> str:
        return self.user if self.user is not None else "API token"


SESSION_KEY = web.RequestKey("console_session", ConsoleSession)
SIGN_IN_TOKEN = web.RequestKey("console_sign_in_token", str)


def _key(secret: bytes) -> bytes:
    # A key of its own: a session cookie can never pass for a signed audio URL or vice versa.
    return hmac.new(secret, b"ivr console session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(secret: bytes, session: ConsoleSession) -> str:
    payload = _b64(
        json.dumps(
            {"u": session.user, "e": session.expires, "c": session.csrf, "f": session.fingerprint},
            separators=(",", ":"),
        ).encode()
    )
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode_session(secret: bytes, value: str, now: float) -> ConsoleSession | None:
    """The session in a cookie value, or None if it is forged, malformed or expired."""
    payload, _, signature = value.partition(".")
    expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        doc = json.loads(_unb64(payload))
        session = ConsoleSession(
            user=doc["u"], expires=int(doc["e"]), csrf=str(doc["c"]), fingerprint=str(doc["f"])
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def fingerprint(settings: Settings, user: str | None) -> str | None:
    """A digest of the credential ``user`` signs in with; None if it no longer exists."""
    credential = settings.api_token if user is None else settings.console_users.get(user)
    if not credential:
        return None
    return hashlib.sha256(b"console credential|" + credential.encode()).hexdigest()[:24]


def _session_of(request: web.Request) -> ConsoleSession | None:
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    services = request.config_dict[SERVICES]
    session = decode_session(services.secret, value, time.time())
    if session is None:
        return None
    current = fingerprint(services.settings, session.user)
    if current is None or not hmac.compare_digest(current, session.fingerprint):
        return None
    return session


def current_session(request: web.Request) -> ConsoleSession:
    """The signed-in session (the middleware let the request through only with one)."""
    return request[SESSION_KEY]


def csrf_token(request: web.Request) -> str:
    """The token a form on this page must send back: the session's, or the sign-in form's."""
    session: ConsoleSession | None = request.get(SESSION_KEY)
    if session is not None:
        return session.csrf
    token: str | None = request.get(SIGN_IN_TOKEN) or request.cookies.get(SIGN_IN_COOKIE)
    return token or ""


async def _sent_token(request: web.Request) -> str:
    if header := request.headers.get(CSRF_HEADER):
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: web.Request) -> None:
    """403 unless the request carries this session's CSRF token (idempotent: the form is
    read once and cached by aiohttp)."""
    expected = csrf_token(request)
    sent = await _sent_token(request)
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise web.HTTPForbidden(
            text="missing or wrong CSRF token: reload the page and try again",
        )


def _cookie_options(settings: Settings) -> dict[str, object]:
    secure = (settings.public_url or "").startswith("https://")
    return {"path": PREFIX, "httponly": True, "samesite": "Strict", "secure": secure}


def _wants_data(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path.startswith((PREFIX + "/events/", PREFIX + "/fragments/"))
        or "text/event-stream" in accept
        or accept.startswith("application/json")
    )


def _public(path: str) -> bool:
    return path == SIGN_IN or path.startswith(STATIC)


@web.middleware
async def require_sign_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /console request but sign-in and static needs a session; every change, CSRF."""
    if _public(request.path):
        return await handler(request)
    session = _session_of(request)
    if session is None:
        if _wants_data(request):
            raise web.HTTPUnauthorized(text="sign in to the console first")
        target = request.path_qs if request.method == "GET" else PREFIX + "/"
        raise web.HTTPSeeOther(f"{SIGN_IN}?next={quote(target, safe='')}")
    request[SESSION_KEY] = session
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        await check_csrf(request)
    return await handler(request)


class Throttle:
    """Failed sign-ins per client address: a password guesser gets 429, not unlimited tries."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    def blocked(self, who: str, now: float) -> bool:
        times = self.failures.get(who)
        while times and times[0] < now - self.window:
            times.popleft()
        if times is not None and not times:
            del self.failures[who]
            return False
        return times is not None and len(times) >= self.limit

    def failed(self, who: str, now: float) -> None:
        self.failures.setdefault(who, deque()).append(now)


THROTTLE = web.AppKey("console_throttle", Throttle)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


@dataclass(frozen=True)
class Identity:
    user: str | None  # None: the API token


async def authenticate(settings: Settings, user: str, password: str) -> Identity | None:
    """Who the credentials sign in as (no user name: the API token), or None."""
    if not user:
        token = settings.api_token
        if token and hmac.compare_digest(password.encode(), token.encode()):
            return Identity(None)
        return None
    hashed = settings.console_users.get(user)
    if hashed is None:
        # Same work as a real check, so the response time does not tell which names exist.
        hashed = DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, hashed)
    return Identity(user) if ok and user in settings.console_users else None


# A hash of a random password: checked against for unknown names (see authenticate).
DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    from ivr.web.console.render import render

    if _session_of(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return await _sign_in_form(request, render, status=200)


async def _sign_in_form(
    request: web.Request,
    render: Callable[..., web.Response],
    *,
    status: int,
    error: str | None = None,
    user: str = "",
) -> web.Response:
    settings = request.config_dict[SERVICES].settings
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    request[SIGN_IN_TOKEN] = token
    response = render(
        request,
        "sign_in.html",
        status=status,
        error=error,
        user_name=user,
        next=safe_next(request.query.get("next")),
        token_enabled=bool(settings.api_token),
        users_enabled=bool(settings.console_users),
    )
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **_cookie_options(settings))  # type: ignore[arg-type]
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    from ivr.web.console.render import render

    services = request.config_dict[SERVICES]
    settings = services.settings
    await check_csrf(request)
    form = await request.post()
    user = str(form.get("user", "")).strip()
    password = str(form.get("password", ""))
    throttle = request.app[THROTTLE]
    who = request.remote or "?"
    now = time.monotonic()
    if throttle.blocked(who, now):
        return await _sign_in_form(
            request, render, status=429, user=user,
            error="Too many failed sign-ins from this address; wait a few minutes.",
        )  # fmt: skip
    identity = await authenticate(settings, user, password) if password else None
    if identity is None:
        throttle.failed(who, now)
        return await _sign_in_form(
            request, render, status=401, user=user,
            error="Wrong user name, password or token.",
        )  # fmt: skip
    name = identity.user
    session = ConsoleSession(
        user=name,
        expires=int(time.time() + settings.console_session),
        csrf=secrets.token_urlsafe(24),
        fingerprint=fingerprint(settings, name) or "",
    )
    target = safe_next(str(form.get("next", "")))
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(services.secret, session),
        max_age=int(settings.console_session),
        **_cookie_options(settings),  # type: ignore[arg-type]
    )
    response.del_cookie(SIGN_IN_COOKIE, path=PREFIX)
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:  # noqa: ARG001
    # The middleware checked the session and the CSRF token (a link elsewhere cannot sign out).
    response = web.HTTPSeeOther(SIGN_IN)
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/sign-in", sign_in_page),
        web.post("/sign-in", sign_in),
        web.post("/sign-out", sign_out),
    ]
