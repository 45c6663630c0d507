"""Carrying out ``lookup`` steps: the integrator's HTTP answer, or a scenario's script.

How an HTTP answer maps to the plan's ``ok`` / ``not_found`` / ``error`` transitions is the
contract with integrators (``result_from_response``); the server uses the async client, the
CLI the blocking one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator

import aiohttp

from ivr.dialplan.vocabulary import Lookup, LookupFinished

MAX_LOOKUP_BYTES = 1 << 20


def result_from_response(status: int, body: bytes) -> LookupFinished:
    """2xx with a JSON object -> ok; 404 -> not_found; anything else -> error."""
    if status == 404:
        return LookupFinished("not_found")
    if not 200 <= status < 300:
        return LookupFinished("error", {"reason": f"HTTP {status}"})
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return LookupFinished("error", {"reason": "the answer is not JSON"})
    if not isinstance(data, dict):
        return LookupFinished("error", {"reason": "the answer is not a JSON object"})
    return LookupFinished("ok", data)


def _request(action: Lookup) -> tuple[str, bytes | None, dict[str, str]]:
    """URL, body and headers: GET params go in the query, POST params in a JSON body."""
    url, body = action.url, None
    headers = {"Accept": "application/json"}
    if action.method == "GET" and action.params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(action.params)
    elif action.method == "POST":
        body = json.dumps(action.params).encode()
        headers["Content-Type"] = "application/json"
    return url, body, headers


def _bad_url(url: str) -> LookupFinished | None:
    if url.startswith(("http://", "https://")):
        return None
    return LookupFinished("error", {"reason": f"not an http(s) URL: {url!r}"})


def http_lookup(action: Lookup) -> LookupFinished:
    """Perform ``action`` over HTTP, blocking (for the CLI)."""
    url, body, headers = _request(action)
    if (bad := _bad_url(url)) is not None:
        return bad
    request = urllib.request.Request(url, data=body, headers=headers, method=action.method)
    try:
        with urllib.request.urlopen(request, timeout=action.timeout) as response:
            return result_from_response(response.status, response.read(MAX_LOOKUP_BYTES))
    except urllib.error.HTTPError as exc:
        return result_from_response(exc.code, b"")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return LookupFinished("error", {"reason": str(exc)})


async def async_http_lookup(session: aiohttp.ClientSession, action: Lookup) -> LookupFinished:
    """Perform ``action`` over HTTP without blocking the event loop (for the server)."""
    url, body, headers = _request(action)
    if (bad := _bad_url(url)) is not None:
        return bad
    timeout = aiohttp.ClientTimeout(total=action.timeout)
    try:
        async with session.request(
            action.method, url, data=body, headers=headers, timeout=timeout
        ) as response:
            content = await response.content.read(MAX_LOOKUP_BYTES)
            return result_from_response(response.status, content)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return LookupFinished("error", {"reason": str(exc) or type(exc).__name__})


class ScriptedLookups:
    """Answers lookups from a scenario's list, in order; an unscripted one is an error."""

    def __init__(self, answers: Iterable[LookupFinished]) -> None:
        self._answers: Iterator[LookupFinished] = iter(answers)
        self.missing = 0

    def __call__(self, action: Lookup) -> LookupFinished:
        answer = next(self._answers, None)
        if answer is None:
            self.missing += 1
            return LookupFinished(
                "error", {"reason": f"the scenario scripts no answer for {action.url}"}
            )
        return answer
