"""The telephony provider as the rest of the product sees it: one small ``Provider`` protocol.

The call runtime and the outbound dialer depend on this protocol only. The Twilio REST
client (``ivr.telephony.twilio.rest.TwilioRestClient``) implements it; pointed at the
simulator's ``api_base`` it also drives simulated calls, so there is one implementation of
the wire protocol.

Errors: every failure is a ``ProviderError`` whose ``retryable`` says whether the same request
may succeed later. ``AmbiguousCreate`` is the one case where nobody knows: a request that
creates a call or a message was sent and no answer came back, so the call or message may
exist. Sending it again could ring a person twice, so the caller must reconcile instead
(wait for the status callback whose URL carries its own reference, or look the call up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, get_args

CallStatus = Literal[
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
]
CALL_STATUSES: frozenset[str] = frozenset(get_args(CallStatus))
# A call in one of these never changes again: a later callback must not move it back.
FINAL_CALL_STATUSES: frozenset[str] = frozenset(
    {"completed", "busy", "failed", "no-answer", "canceled"}
)

MessageStatus = Literal[
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "receiving",
    "received",
    "read",
    "partially_delivered",
    "canceled",
]
MESSAGE_STATUSES: frozenset[str] = frozenset(get_args(MessageStatus))

CreatedResource = Literal["call", "message"]


@dataclass(frozen=True)
class CallInfo:
    """A call as the provider's REST API describes it."""

    sid: str
    status: CallStatus
    to: str
    from_number: str
    direction: str
    duration: int | None = None
    answered_by: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class MessageInfo:
    """An SMS as the provider's REST API describes it."""

    sid: str
    status: MessageStatus
    to: str
    from_number: str
    error_code: int | None = None
    error_message: str | None = None


class ProviderError(Exception):
    """A provider request failed.

    ``retryable`` is True when the same request may succeed later (a 5xx, a 429, a connection
    that could not be made); False for a request the provider rejected (a 4xx). ``code``,
    ``more_info`` and ``status`` come from the provider's error body when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        code: int | None = None,
        more_info: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.code = code
        self.more_info = more_info
        self.retry_after = retry_after


class AmbiguousCreate(ProviderError):
    """A create request was sent but its outcome is unknown: the call or message may exist.

    Never retried automatically and ``retryable`` is False, so that a handler that only knows
    ``ProviderError`` cannot create a duplicate either. Reconcile: the status callback of a
    call that does exist arrives with the reference put into its ``StatusCallback`` URL.
    """

    def __init__(self, message: str, *, resource: CreatedResource, status: int | None = None):
        super().__init__(message, retryable=False, status=status)
        self.resource = resource


class Provider(Protocol):
    """What the product needs from a telephony provider's REST API."""

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
        """Dial ``to``; the provider requests ``answer_url`` when the call is answered and
        posts every status change (initiated, ringing, answered, completed) to ``status_url``.
        With ``detect_machine`` the answer request carries ``AnsweredBy`` once an answering
        machine's greeting has ended. Raises ``AmbiguousCreate`` when the outcome is unknown.
        """
        ...

    async def send_sms(
        self, *, to: str, from_number: str, body: str, status_url: str | None = None
    ) -> MessageInfo:
        """Send an SMS; delivery reports go to ``status_url``. May raise ``AmbiguousCreate``."""
        ...

    async def get_call(self, call_sid: str) -> CallInfo:
        """The call's current state (reconciliation after a crash or an ambiguous create)."""
        ...

    async def find_calls(self, to: str, since: datetime) -> list[CallInfo]:
        """Calls to ``to`` created at or after ``since``, newest first: how an attempt whose
        create was never confirmed (a crash, a timeout) is found instead of dialed again."""
        ...

    async def fetch_recording(self, recording_url: str) -> bytes:
        """The WAV bytes of a recording the provider announced in a webhook."""
        ...

    async def delete_recording(self, recording_sid: str) -> None:
        """Delete a recording at the provider; deleting one already gone is not an error."""
        ...
