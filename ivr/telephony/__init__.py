"""Telephony: the ``Provider`` protocol, TwiML rendering and the Twilio dialect.

``provider`` is what the rest of the product depends on; ``twiml`` renders the engine's
actions; ``twilio`` parses and verifies webhooks and talks to the REST API.
"""
