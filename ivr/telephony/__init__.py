"""Telephony: the ``Provider`` protocol and the provider adapters.

``provider`` is what the rest of the product depends on (place calls, send SMS, recordings);
``twilio`` is the Twilio adapter (webhooks, REST, TwiML, Media Streams, its routes and the
call runtime's dialect); ``simulator`` is a simulated network speaking Twilio's protocol.
"""
