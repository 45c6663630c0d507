"""TwiML rendering: the engine's actions for one turn become one ``<Response>`` document.

Pure functions: no I/O. URLs come from a ``TurnUrls`` object the dialect (dialect.py) passes
in (the action URLs of this call and turn, and signed URLs of prompt audio).

Prompts are ``<Play>`` of audio this server synthesized or ships; ``<Say>`` (the provider's
own voice) is the last resort for a prompt whose synthesis failed. A ``<Play>`` of a file
that cannot be served is left out: there is no text to say instead.

How a turn ends:

- ``Listen`` (see below); ``Transfer`` -> ``<Dial>number</Dial>`` (a blank number hangs up);
  ``HangUp`` -> ``<Hangup/>``. Prompts before them are played first.
- No ending action: the document ends after its prompts, and Twilio ends the call there.
  An empty output list therefore renders ``<Response/>``, which hangs up: repeated webhooks
  must be answered from the stored TwiML of their turn, never by rendering nothing.
- ``Lookup``, ``SendSms``, ``SetOutcome`` and notes are not TwiML and are skipped.

Listening. Twilio semantics this relies on (TwiML ``<Gather>`` and ``<Record>`` reference):

- ``<Gather input="dtmf">`` plays its nested ``<Play>``/``<Say>``; a key press stops them.
  Its ``timeout`` (a positive integer) starts when the nested prompts end. It requests its
  ``action`` with ``Digits`` once ``numDigits`` keys came, ``finishOnKey`` was pressed (that
  key is not part of ``Digits``) or the timeout passed after at least one key. With no key
  at all it requests nothing and Twilio runs the next verb of the document, unless
  ``actionOnEmptyResult="true"``.
- ``<Record>`` ends on ``timeout`` seconds of silence (also counted from its start), on
  ``maxLength``, or on a key in ``finishOnKey``; that key is sent as ``Digits`` (``hangup``
  when the caller hung up). If the recording is empty (the caller said nothing) Twilio does
  NOT request the action URL: it runs the next verb of the same document.

Keypad-only listens (intents that only have keys, digit collection in a language without
spoken digits, or ``speech=False`` because no recognizer serves the language)::

    <Gather input="dtmf" action=GATHER method="POST" numDigits=N finishOnKey=K timeout=T>
      prompts...
    </Gather>
    <Redirect method="POST">NO_INPUT</Redirect>

``N`` is 1 for intents (``finishOnKey=""`` so ``#`` and ``*`` can be intent keys), the
maximum length for digits (``finishOnKey`` = the plan's ``finish_on``, ``""`` without one).
``T`` is the listen timeout rounded up to whole seconds.

Listens that accept speech (an intent with phrases, or digits in a language with spoken
digit words, when ``speech=True``)::

    <Gather input="dtmf" action=GATHER method="POST" numDigits=N finishOnKey="" timeout=G>
      prompts...
    </Gather>
    <Record action=RECORD method="POST" timeout=T finishOnKey="0123456789*#" maxLength=M
            playBeep="false" trim="trim-silence"/>
    <Redirect method="POST">NO_INPUT</Redirect>

Never ``<Gather input="speech">``: speech is recognized offline, here, from the recording.
The Gather (``N`` = 1 for intents) lets a key interrupt the prompts. ``G`` (default 1 s,
the smallest Twilio accepts) is how long a key is still taken as a key after the prompts;
speech that starts inside it is not recorded, so it is kept short. Then the Record takes
the answer: speech ends on ``T`` seconds of silence; a key ends the recording and arrives
as ``Digits`` at RECORD (the runtime takes the key and ignores the audio); silence gives
an empty recording, so Twilio skips RECORD and follows the Redirect: the no-input event.
A key pressed before any sound was recorded could make the recording empty on a real
Twilio; the caller then gets the no-input retry and presses again.

Digits that may be spoken start the same way, with ``numDigits`` = the maximum length:
a caller who types quickly is served by that Gather alone, and ``finishOnKey=""`` there
so that the finish key arrives inside ``Digits`` and says that the number is complete.
A caller who pauses longer than ``G`` (or ends the recording with a key) has typed only
the start of a number: ``needs_more_digits`` tells the dialect to collect the rest with
``render_more_digits``, a keypad Gather for the remaining digits (the plan's finish key and
timeout) whose action URL carries the keys typed so far. It always requests that URL
(``actionOnEmptyResult``, and a Redirect to it as well for providers without that
attribute), and whatever arrives there, even nothing, completes the turn.

So the action handlers (routes.py and the call runtime) read: at GATHER,
``keys = typed + Digits``; if nothing was typed before and ``needs_more_digits(keys)``, answer
``render_more_digits``; else the event is ``KeysPressed(keys)``, or ``NoInput`` when ``keys``
is empty. At RECORD, a ``Digits`` of ``hangup`` means the caller hung up, a key is handled as
at GATHER, and otherwise the recording is recognized. At NO_INPUT, the event is ``NoInput``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from xml.etree.ElementTree import Element, SubElement, tostring

from ivr.dialplan.digits import digit_words
from ivr.dialplan.vocabulary import HangUp, Listen, Output, Play, Say, Transfer

KEYS = "0123456789*#"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# Characters XML 1.0 cannot carry at all; a prompt rendered from an integrator's data may
# contain them, and one of them would make the whole document unreadable to the provider.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ListenKind = Literal["keys", "speech"]


class TurnUrls(Protocol):
    """URLs the dialect provides for one turn of one call (urls.CallUrls)."""

    def gather_url(self, typed: str = "") -> str:
        """Where ``<Gather>`` posts ``Digits``; ``typed`` are keys already collected in this
        turn, to be put in front of ``Digits`` (only ``render_more_digits`` passes them)."""
        ...

    def record_url(self) -> str:
        """Where ``<Record>`` posts a non-empty recording (or the key that ended it)."""
        ...

    def no_input_url(self) -> str:
        """Where the call goes when the caller gave no answer at all."""
        ...

    def audio_url(self, prompt: Say | Play) -> str | None:
        """A URL the provider can fetch the prompt's audio from; None if there is none."""
        ...


@dataclass(frozen=True)
class ListenSettings:
    """Twilio-specific timing of spoken answers (the plan's timeout covers the rest)."""

    key_grace_seconds: int = 1
    max_recording_seconds: int = 15

    def __post_init__(self) -> None:
        if self.key_grace_seconds < 1:
            raise ValueError("key_grace_seconds must be at least 1 (Twilio's minimum)")
        if self.max_recording_seconds < 2:
            raise ValueError("max_recording_seconds must be at least 2 (Twilio's minimum)")


DEFAULT_SETTINGS = ListenSettings()


def listen_kind(listen: Listen, *, speech: bool = True) -> ListenKind:
    """``speech`` when the caller may answer by voice, else ``keys``.

    ``speech`` says whether this server can recognize the listen's language at all.
    """
    if not speech:
        return "keys"
    if listen.spec.digits is not None:
        return "speech" if digit_words(listen.language) else "keys"
    return "speech" if any(intent.say for intent in listen.spec.intents.values()) else "keys"


def needs_more_digits(listen: Listen, keys: str, *, speech: bool = True) -> bool:
    """True when ``keys`` is only the start of a spoken-or-typed number (see module doc).

    Call it with the ``Digits`` of the first Gather of a turn or of a Record; the answer of
    ``render_more_digits`` is never continued again.
    """
    spec = listen.spec.digits
    return (
        spec is not None
        and listen_kind(listen, speech=speech) == "speech"
        and 0 < len(keys) < spec.max
        and all(key in "0123456789" for key in keys)
    )


def render(
    outputs: Sequence[Output],
    urls: TurnUrls,
    *,
    speech: bool = True,
    settings: ListenSettings = DEFAULT_SETTINGS,
) -> str:
    """The TwiML document for one turn's outputs (see the module doc for the verbs)."""
    response = Element("Response")
    prompts: list[Element] = []
    ended_by: Output | None = None
    for item in outputs:
        if not isinstance(item, Say | Play | Listen | Transfer | HangUp):
            continue
        if ended_by is not None:
            raise ValueError(f"{item!r} comes after {ended_by!r}, which ends the turn")
        if isinstance(item, Say | Play):
            if (prompt := _prompt(item, urls)) is not None:
                prompts.append(prompt)
            continue
        ended_by = item
        if isinstance(item, Listen):
            _listen(response, prompts, item, urls, speech, settings)
            continue
        response.extend(prompts)
        number = _xml_text(item.number).strip() if isinstance(item, Transfer) else ""
        if number:
            SubElement(response, "Dial").text = number
        else:
            SubElement(response, "Hangup")
    if ended_by is None:
        response.extend(prompts)
    return _document(response)


def render_more_digits(listen: Listen, typed: str, urls: TurnUrls) -> str:
    """Collect the rest of a number whose first keys ``typed`` were already pressed."""
    spec = listen.spec.digits
    if spec is None:
        raise ValueError(f"state {listen.state!r} does not collect digits")
    if not typed.isdecimal() or not typed.isascii() or len(typed) >= spec.max:
        raise ValueError(f"{typed!r} is not the start of a number of up to {spec.max} digits")
    response = Element("Response")
    action = urls.gather_url(typed)
    gather = SubElement(response, "Gather", _gather_attributes(action))
    gather.set("numDigits", str(spec.max - len(typed)))
    gather.set("finishOnKey", spec.finish_on or "")
    gather.set("timeout", str(_seconds(listen.spec.timeout)))
    gather.set("actionOnEmptyResult", "true")
    _redirect(response, action)
    return _document(response)


def render_message(text: str) -> str:
    """An SMS reply; a blank ``text`` renders an empty response (no reply)."""
    response = Element("Response")
    if clean := _xml_text(text).strip():
        SubElement(response, "Message").text = clean
    return _document(response)


def render_say_hangup(text: str, language: str) -> str:
    """Say ``text`` in the provider's voice and hang up (a polite refusal)."""
    response = Element("Response")
    if clean := _xml_text(text).strip():
        SubElement(response, "Say", {"language": language}).text = clean
    SubElement(response, "Hangup")
    return _document(response)


def render_connect(stream_url: str, action_url: str, parameters: dict[str, str]) -> str:
    """Open a bidirectional Media Stream (``<Connect><Stream>``) to ``stream_url``.

    Twilio sends ``parameters`` back in the stream's ``start.customParameters`` (the stream
    URL itself must not carry a query string). When the server closes the WebSocket, or the
    connection drops, ``<Connect>`` ends and Twilio requests ``action_url``: the call goes on
    from whatever that answers.
    """
    if not stream_url.startswith("wss://"):
        raise ValueError(f"stream URL {stream_url!r}: Twilio streams only to wss:// URLs")
    if "?" in stream_url:
        raise ValueError(f"stream URL {stream_url!r}: no query string (use parameters)")
    response = Element("Response")
    connect = SubElement(response, "Connect", {"action": action_url, "method": "POST"})
    stream = SubElement(connect, "Stream", {"url": stream_url})
    for name, value in parameters.items():
        SubElement(stream, "Parameter", {"name": name, "value": _xml_text(value)})
    return _document(response)


def render_after_prompts(outputs: Sequence[Output]) -> str:
    """How a turn ends once its prompts were played some other way (over a Media Stream):
    the turn's ``<Dial>`` or ``<Hangup>`` alone, ``<Hangup/>`` when it has neither."""
    response = Element("Response")
    ending = next((o for o in outputs if isinstance(o, Transfer | HangUp)), HangUp())
    number = _xml_text(ending.number).strip() if isinstance(ending, Transfer) else ""
    if number:
        SubElement(response, "Dial").text = number
    else:
        SubElement(response, "Hangup")
    return _document(response)


def render_wait(url: str, seconds: int) -> str:
    """Keep the line open for ``seconds`` of silence, then ask ``url`` what to do next."""
    response = Element("Response")
    SubElement(response, "Pause", {"length": str(max(1, seconds))})
    _redirect(response, url)
    return _document(response)


def _listen(
    response: Element,
    prompts: list[Element],
    listen: Listen,
    urls: TurnUrls,
    speech: bool,
    settings: ListenSettings,
) -> None:
    spec = listen.spec
    timeout = _seconds(spec.timeout)
    gather = SubElement(response, "Gather", _gather_attributes(urls.gather_url()))
    gather.extend(prompts)
    if listen_kind(listen, speech=speech) == "keys":
        if spec.digits is not None:
            gather.set("numDigits", str(spec.digits.max))
            gather.set("finishOnKey", spec.digits.finish_on or "")
        else:
            gather.set("numDigits", "1")
            gather.set("finishOnKey", "")
        gather.set("timeout", str(timeout))
    else:
        gather.set("numDigits", str(spec.digits.max) if spec.digits is not None else "1")
        gather.set("finishOnKey", "")
        gather.set("timeout", str(settings.key_grace_seconds))
        record = {
            "action": urls.record_url(),
            "method": "POST",
            "timeout": str(timeout),
            "finishOnKey": KEYS,
            "maxLength": str(settings.max_recording_seconds),
            "playBeep": "false",
            "trim": "trim-silence",
        }
        SubElement(response, "Record", record)
    _redirect(response, urls.no_input_url())


def _gather_attributes(action: str) -> dict[str, str]:
    return {"input": "dtmf", "action": action, "method": "POST"}


def _prompt(prompt: Say | Play, urls: TurnUrls) -> Element | None:
    url = urls.audio_url(prompt)
    if url is not None:
        element = Element("Play")
        element.text = url
        return element
    if isinstance(prompt, Play) or not (text := _xml_text(prompt.text).strip()):
        return None
    element = Element("Say", {"language": prompt.language})
    element.text = text
    return element


def _redirect(response: Element, url: str) -> None:
    SubElement(response, "Redirect", {"method": "POST"}).text = url


def _seconds(duration: float) -> int:
    """Twilio takes whole, positive seconds."""
    return max(1, math.ceil(duration))


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _document(response: Element) -> str:
    return _DECLARATION + tostring(response, encoding="unicode")
