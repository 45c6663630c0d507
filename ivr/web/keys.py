"""The application's shared objects, as typed aiohttp app keys (set in ``app.py``)."""

from __future__ import annotations

from aiohttp import web

from ivr.calls.live_calls import LiveCalls
from ivr.calls.service import CallService
from ivr.calls.services import Services

SERVICES = web.AppKey("services", Services)
CALLS = web.AppKey("calls", CallService)
LIVE = web.AppKey("live_calls", LiveCalls)
