"""What a provider is answered, in its own language: the one thing the call runtime asks of it.

The runtime (:class:`~ivr.calls.service.CallService`) decides what happens in a call; a
``CallDialect`` writes it down the way the provider expects (TwiML for Twilio, see
``ivr.telephony.twilio.dialect``). Every response is an opaque string: the runtime stores it
with the turn (``last_response``) before it leaves, and answers a repeated webhook with the
stored one, never by rendering again. A second provider is one more implementation of this
protocol, plus its routes that parse the provider's webhooks into the runtime's calls.

Turn numbers are the turn the response is for: the action URLs in it name that turn, so a
webhook for a turn already taken is recognised as a repeat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ivr.dialplan.vocabulary import Listen, Output, Play, Say


class CallDialect(Protocol):
    """Responses for one provider; URLs are the provider's callbacks into this server."""

    @property
    def streaming(self) -> bool:
        """Whether a turn that waits for the caller is answered with a media stream
        (:meth:`connect_stream`) instead of the provider's own listening (:meth:`turn`)."""
        ...

    def turn(
        self,
        ref: str,
        turn: int,
        outputs: Sequence[Output],
        audio: Mapping[Say | Play, str],
        *,
        speech: bool,
    ) -> str:
        """A turn's prompts and how it ends (listen, transfer, hang up). ``audio`` maps each
        prompt to the URL path of its prepared file (a prompt missing from it failed to
        render); ``speech`` says whether a recognizer serves the plan's language."""
        ...

    def more_digits(
        self, ref: str, turn: int, listen: Listen, keys: str, *, speech: bool
    ) -> str | None:
        """Keep collecting after ``keys`` when the listen wants more of them, else None."""
        ...

    def say_and_hang_up(self, text: str, language: str) -> str:
        """Say ``text`` in the provider's own voice and end the call (no plan answers)."""
        ...

    def wait(self, ref: str, turn: int, recording_url: str, recording_sid: str, waits: int) -> str:
        """A short pause, then ask again about the same recording (still being recognised);
        ``waits`` is how many pauses the caller will have heard."""
        ...

    def connect_stream(self, ref: str, turn: int) -> str:
        """Open a media stream for the call, listening at ``turn``."""
        ...

    def after_streamed(self, outputs: Sequence[Output]) -> str:
        """How a streamed turn ends once its prompts were played over the stream."""
        ...

    def gone(self) -> str:
        """The answer for a call that is over (or a turn nobody can take any more)."""
        ...

    def answer_url(self, ref: str) -> str:
        """Where the provider asks what to do when an outbound call is answered."""
        ...

    def status_url(self, ref: str) -> str:
        """Where the provider reports the progress of a call."""
        ...

    def sms_status_url(self, sms_ref: str) -> str:
        """Where the provider reports the delivery of a message."""
        ...
