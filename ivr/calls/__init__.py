"""The call runtime, provider-neutral: live media sessions (prompts out, caller audio in).

Nothing here knows TwiML, aiohttp routes or a provider's framing: a provider adapter feeds a
:class:`~ivr.calls.media_session.MediaSession` with caller audio, keys and mark echoes, and
carries out what it sends through a :class:`~ivr.calls.media.MediaTransport`.
"""
