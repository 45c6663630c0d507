"""The simulated SMS centre: delivery reports for sent messages, inbound SMS and replies.

Sent messages move ``queued -> sent -> delivered`` (or end ``undelivered``/``failed`` for
numbers configured to fail), each step reported to the message's ``StatusCallback``.
Inbound SMS are signed webhooks like Twilio's; the application's TwiML ``<Message>``
replies are recorded as messages sent back to the texter.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ivr.telephony.provider import MessageStatus
from ivr.telephony.simulator.http import WebhookClient
from ivr.telephony.simulator.state import (
    MessageRecord,
    WebhookExchange,
    country_of,
    new_sid,
    utcnow,
)
from ivr.telephony.twilio import API_VERSION

_FAILURES = ("undelivered", "failed")
STEP_SECONDS = 0.5  # simulated time between two delivery reports


class WebhookError(Exception):
    """The application did not answer a webhook usably; ``exchange`` says how."""

    def __init__(self, message: str, exchange: WebhookExchange) -> None:
        super().__init__(message)
        self.exchange = exchange


class SmsCenter:
    """Every SMS of the simulated network, and how it fares."""

    def __init__(self, account_sid: str, client: WebhookClient) -> None:
        self.account_sid = account_sid
        self.client = client
        self.messages: dict[str, MessageRecord] = {}
        self._failing: dict[str, tuple[MessageStatus, int]] = {}

    def fail(self, number: str, status: MessageStatus, error_code: int) -> None:
        self._failing[number] = (status, error_code)

    def accept(
        self,
        to: str,
        from_: str,
        body: str,
        status_callback: str | None,
        form: Sequence[tuple[str, str]],
    ) -> MessageRecord:
        message = MessageRecord(
            new_sid("SM"),
            self.account_sid,
            "outbound-api",
            from_,
            to,
            body,
            status_callback=status_callback,
            form=list(form),
        )
        self.messages[message.sid] = message
        return message

    async def deliver(self, message: MessageRecord, pace: float) -> None:
        """Walk the message through its statuses, reporting each one."""
        try:
            failure = self._failing.get(message.to)
            steps: list[MessageStatus] = ["queued", "sent", "delivered"]
            if failure is not None:
                steps = ["queued", "failed"] if failure[0] == "failed" else [*steps[:2], failure[0]]
            for status in steps:
                await asyncio.sleep(STEP_SECONDS * pace)
                message.status = status
                if status == "sent":
                    message.sent = utcnow()
                if status in _FAILURES and failure is not None:
                    message.error_code = failure[1]
                await self._report(message)
        finally:
            message.done.set()

    async def _report(self, message: MessageRecord) -> None:
        if not message.status_callback:
            return
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "To": message.to,
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": message.status,
            "SmsStatus": message.status,
        }
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        exchange, _ = await self.client.send(
            "sms-status", "POST", message.status_callback, params, message.sid
        )
        # As for a call's status callback, Twilio logs anything but a 2xx as error 11200.
        if exchange.status is None or not 200 <= exchange.status < 300:
            answer = exchange.error or f"HTTP {exchange.status}"
            message.errors.append(
                f"11200 HTTP retrieval failure: {message.status} callback answered {answer}"
            )

    async def receive(self, from_: str, to: str, body: str, sms_url: str, method: str) -> list[str]:
        """Send an inbound SMS to the application; returns its ``<Message>`` reply texts."""
        message = MessageRecord(
            new_sid("SM"), self.account_sid, "inbound", from_, to, body, status="received"
        )
        message.done.set()
        self.messages[message.sid] = message
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_,
            "FromCountry": country_of(from_),
            "MessageSid": message.sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsStatus": "received",
            "To": to,
            "ToCountry": country_of(to),
        }
        exchange, reply = await self.client.send("sms", method, sms_url, params, message.sid)
        if exchange.status is None or not 200 <= exchange.status < 300:
            problem = exchange.error or f"HTTP {exchange.status}"
            raise WebhookError(f"the application did not take the SMS: {problem}", exchange)
        if not reply.strip():
            return []
        try:
            root = ET.fromstring(reply)
        except ET.ParseError as exc:
            raise WebhookError(f"the SMS reply is not XML: {exc}", exchange) from exc
        if root.tag != "Response":
            raise WebhookError(f"the SMS reply is <{root.tag}>, not <Response>", exchange)
        return [self._reply(element, from_, to).body for element in root.iter("Message")]

    def _reply(self, element: ET.Element, texter: str, number: str) -> MessageRecord:
        """Record one ``<Message>`` reply (its text directly or in a ``<Body>``)."""
        body_element = element.find("Body")
        text = (body_element.text if body_element is not None else element.text) or ""
        reply = MessageRecord(
            new_sid("SM"),
            self.account_sid,
            "outbound-reply",
            element.get("from") or number,
            element.get("to") or texter,
            text.strip(),
            status="sent",
            sent=utcnow(),
        )
        reply.done.set()
        self.messages[reply.sid] = reply
        return reply
