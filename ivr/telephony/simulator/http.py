"""The simulator's side of the wire: signed requests to the application, each one logged.

Requests look like Twilio's: form-encoded POST (or GET with the parameters in the query),
``X-Twilio-Signature`` computed by the ``twilio`` package over the exact URL requested plus
the POST parameters, and Twilio's user agent. Nothing here raises on HTTP trouble: every
outcome (status, timeout, refused connection) comes back as a :class:`WebhookExchange`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from ivr.speech.audio import (
    TELEPHONY_RATE,
    WAVE_FORMAT_MULAW,
    duration_seconds,
    inspect_wav,
    read_wav,
    resample,
)
from ivr.telephony.simulator.state import WebhookExchange
from ivr.telephony.twilio import sign

USER_AGENT = "TwilioProxy/1.1"
AUDIO_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
TEXT_TYPES = ("text/", "application/xml", "application/json", "application/x-www-form")
MAX_BODY = 1024 * 1024  # a TwiML document or prompt larger than this is an application error


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to its query string (for GET webhooks)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


@dataclass(frozen=True)
class PromptAudio:
    """A fetched ``<Play>`` file: its length, its format, and its audio when kept."""

    duration: float
    format: str  # "mu-law 8000 Hz", "16-bit 8000 Hz" ...
    pcm8k: bytes | None  # 8 kHz 16-bit PCM, only when the simulator keeps prompt audio


def decode_prompt(body: bytes, keep_audio: bool) -> PromptAudio:
    """Decode a WAV prompt (mu-law or PCM); ValueError when it is not a readable WAV file."""
    header = inspect_wav(body)
    pcm, rate = read_wav(body)
    kind = "mu-law" if header.format_tag == WAVE_FORMAT_MULAW else f"{header.bits_per_sample}-bit"
    kept = resample(pcm, rate, TELEPHONY_RATE) if keep_audio else None
    return PromptAudio(duration_seconds(pcm, rate), f"{kind} {rate} Hz", kept)


class WebhookClient:
    """Sends signed requests with one shared connection pool and keeps the exchange log."""

    def __init__(self, auth_token: str, timeout: float) -> None:
        self.auth_token = auth_token
        self.timeout = timeout
        self.exchanges: list[WebhookExchange] = []
        self._session: aiohttp.ClientSession | None = None

    def signature(self, url: str, params: dict[str, str]) -> str:
        return sign(self.auth_token, url, params)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),  # as many calls as the test runs
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        purpose: str,
        method: str,
        url: str,
        params: dict[str, str],
        sid: str | None,
    ) -> tuple[WebhookExchange, bytes]:
        """One request; returns the logged exchange and the raw response body."""
        method = method.upper()
        target = url if method == "POST" else with_query(url, params)
        signed_params = params if method == "POST" else {}
        exchange = WebhookExchange(
            purpose, method, target, dict(params), self.signature(target, signed_params), sid
        )
        self.exchanges.append(exchange)
        headers = {
            "X-Twilio-Signature": exchange.signature,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        started = time.perf_counter()
        body = b""
        try:
            async with self._client().request(
                method,
                URL(target, encoded=True),  # sign and send the very same bytes
                data=params if method == "POST" else None,
                headers=headers,
                allow_redirects=False,
            ) as response:
                exchange.status = response.status
                exchange.content_type = response.content_type
                body = await response.content.read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    exchange.error = f"response larger than {MAX_BODY} bytes"
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            exchange.error = f"{method} {target}: {reason or type(exc).__name__}"
        exchange.elapsed = time.perf_counter() - started
        if exchange.content_type.startswith(TEXT_TYPES):
            exchange.body = body.decode("utf-8", errors="replace")
        elif body:
            exchange.body = f"<{len(body)} bytes of {exchange.content_type or 'unknown type'}>"
        return exchange, body

    async def fetch_prompt(self, url: str, sid: str, keep_audio: bool) -> PromptAudio | str:
        """GET a ``<Play>`` URL like Twilio: 200 and a WAV type, or a problem description."""
        exchange, body = await self.send("play", "GET", url, {}, sid)
        if exchange.error is not None or exchange.status != 200:
            return f"<Play> could not fetch {url}: {exchange.error or f'HTTP {exchange.status}'}"
        if exchange.content_type not in AUDIO_TYPES:
            return f"<Play> {url} is {exchange.content_type or 'untyped'}, not audio/wav"
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, decode_prompt, body, keep_audio)
        except ValueError as exc:
            return f"<Play> {url}: {exc}"
