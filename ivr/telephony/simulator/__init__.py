"""The simulated telephone network: Twilio's REST API, webhooks, TwiML and Media Streams.

``network`` is the :class:`Simulator` itself; ``api`` its REST routes, ``call`` the TwiML
interpreter, ``stream`` the Media Streams client, ``persona`` the scripted callers, ``sms``
the message centre, ``http`` the signed webhook client and ``state`` the records it keeps.
"""

from __future__ import annotations

from ivr.telephony.simulator.network import (
    ApiRequest,
    CallRecord,
    MessageRecord,
    Persona,
    Simulator,
    SimulatorSettings,
    WebhookError,
)

__all__ = [
    "ApiRequest",
    "CallRecord",
    "MessageRecord",
    "Persona",
    "Simulator",
    "SimulatorSettings",
    "WebhookError",
]
