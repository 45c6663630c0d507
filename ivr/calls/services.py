"""What the call runtime shares with its callers, created at start-up and closed at shutdown
(by the web application, ``ivr/web/app.py``).

Nothing here is a provider's or a web framework's: the provider is the neutral ``Provider``
protocol, and lookups are a function (the application performs them over its HTTP client).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from ivr.calls.turns import LookupRunner
from ivr.config import Settings
from ivr.dialplan.loader import PlanSet
from ivr.dialplan.schema import Plan
from ivr.dialplan.vocabulary import Listen, NoInput, SpeechRecognized
from ivr.speech.prompts import PromptCache
from ivr.store import Store
from ivr.telephony.provider import Provider


class SpeechRecognizer(Protocol):
    """Offline recognition of a caller's recorded answer against the listen's grammar."""

    def supports(self, language: str) -> bool: ...

    async def recognize(self, wav: bytes, listen: Listen) -> SpeechRecognized | NoInput: ...


def plan_hashes(plans: PlanSet) -> dict[str, str]:
    """Content hash of each plan file: a call records which version of its plan it started on."""
    return {
        plan_id: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for plan_id, path in plans.files.items()
    }


@dataclass
class Services:
    settings: Settings
    base_url: str
    plans: PlanSet
    store: Store
    provider: Provider
    # Performs a plan's lookup (an HTTP request to the integrator's endpoint).
    lookup: LookupRunner
    prompts: PromptCache
    secret: bytes
    recognizer: SpeechRecognizer | None = None
    hashes: dict[str, str] = field(default_factory=dict)

    def plan(self, plan_id: str) -> Plan | None:
        return self.plans.plans.get(plan_id)

    def speech_for(self, plan: Plan) -> bool:
        return self.recognizer is not None and self.recognizer.supports(plan.language)
