"""Hypothesis strategies for bad input: webhook forms, JSON bodies, headers, raw bytes.

Values are drawn mostly from near misses of what the server accepts (a valid SID with a
trailing newline, a number with 30 digits, a status in capitals) so that many requests get
past the first check, mixed with arbitrary text and bytes. The test module resolves the
symbolic choices (``"live"`` call, ``"current"`` turn) against the running server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# Text an HTTP client can send at all: no lone surrogates (they cannot be UTF-8 encoded).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# What an HTTP client will put in a header: no control characters.
LATIN1 = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"]), max_size=40
)

TRICKY = [
    "",
    " ",
    "\n",
    "\x00",
    "null",
    "-1",
    "0",
    "1e3",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes
    "9" * 30,
    "1" * 5000,
    "a" * 3000,
    "CA" + "1" * 32 + "\n",
    "+12025550142\n",
    "+12025550142",
    "+15550100",
    "+4915112345678",
    "1#*",
    "hangup",
    "HANGUP",
    "completed",
    "COMPLETED",
    "in-progress",
    "delivered",
    "undelivered",
    "machine_end_beep",
    "human",
    "http://127.0.0.1:1/rec/RE1",
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "ftp://x/RE1",
    "Tue, 31 Feb 2026 25:00:00 +0000",
    "Wed, 02 Dec 2026 10:00:00 +0000",
    "0000",
    "\u202e",
    "🙂",
]
# Near misses of a count (durations, sequence numbers, error codes) and of a date.
COUNTS = ["9" * 30, "9" * 19, str(2**31), str(2**31 - 1), "1" * 5000, "-0", "+1", "1.5", "0x10"]
COUNTS += ["Mon, 99 Dec 2026 10:00:00 +0000", "Wed, 02 Dec 2026 10:00:00 +9999", "0"]
VALUE = st.one_of(st.sampled_from(TRICKY), st.sampled_from(COUNTS), TEXT)

CALL_FIELDS = [
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "CallStatus",
    "Direction",
    "AnsweredBy",
    "Digits",
    "RecordingUrl",
    "RecordingSid",
    "RecordingDuration",
    "CallDuration",
    "SequenceNumber",
    "Timestamp",
]
SMS_FIELDS = ["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "MessageStatus"]
SMS_FIELDS += ["SmsStatus", "ErrorCode"]
FIELD = st.one_of(st.sampled_from(CALL_FIELDS + SMS_FIELDS), TEXT)


@dataclass(frozen=True)
class FormChanges:
    """What to do to a route's valid form: drop some fields, change some, add repeats."""

    drop: frozenset[str]
    change: dict[str, str]
    extra: list[tuple[str, str]]

    def apply(self, form: dict[str, str]) -> list[tuple[str, str]]:
        pairs = [(k, v) for k, v in {**form, **self.change}.items() if k not in self.drop]
        return pairs + self.extra


# The parameters each route reads (required or optional): most changes go to these.
ROUTE_FIELDS = {
    "voice": ["CallSid", "AccountSid", "From", "To", "CallStatus", "Direction", "AnsweredBy"],
    "status": [
        *("CallSid", "AccountSid", "CallStatus", "CallDuration", "AnsweredBy"),
        *("SequenceNumber", "Timestamp"),
    ],
    "gather": ["CallSid", "AccountSid", "Digits"],
    "record": [
        *("CallSid", "AccountSid", "RecordingUrl", "RecordingSid", "RecordingDuration"),
        "Digits",
    ],
    "no-input": ["CallSid", "AccountSid"],
    "stream-ended": ["CallSid", "AccountSid"],
    "recognizing": ["CallSid", "AccountSid"],
    "sms": ["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body"],
    "sms-status": ["MessageSid", "SmsSid", "AccountSid", "MessageStatus", "SmsStatus", "ErrorCode"],
}


SIDS = ["CA" + "1" * 32 + "\n", "CA" + "1" * 33, "CA" + "1" * 200, "v3:abc", "-CA1", "CA 1"]
NEAR_MISSES = {
    "count": COUNTS,
    "Timestamp": [*COUNTS[-3:], "Wed, 02 Dec 2026 10:00:00 +0000", "yesterday", "2026-12-02"],
    "Digits": ["1\n", "12#*", "hangup", "Hangup", "١", "1 2", "A", "9" * 300, "#"],
    "number": ["+12025550142\n", "+1 202 555 0142", "12025550142", "+0123456", "+" + "9" * 20],
    "CallStatus": ["COMPLETED", "completed ", "canceled", "no-answer", "ringing", "queued"],
    "MessageStatus": ["DELIVERED", "read", "partially_delivered", "receiving", "failed"],
    "RecordingUrl": ["http://127.0.0.1:1/RE1", "https://", "http:///RE1", "//x/RE1", "x"],
    "sid": SIDS,
}
KIND = {"CallDuration": "count", "SequenceNumber": "count", "RecordingDuration": "count"}
KIND |= {"ErrorCode": "count", "From": "number", "To": "number", "SmsStatus": "MessageStatus"}
KIND |= dict.fromkeys(("CallSid", "MessageSid", "SmsSid", "RecordingSid"), "sid")


def field_value(name: str) -> st.SearchStrategy[str]:
    """Mostly a near miss of what ``name`` takes, else any value."""
    near = NEAR_MISSES.get(KIND.get(name, name))
    return VALUE if near is None else st.one_of(st.sampled_from(near), st.sampled_from(near), VALUE)


def form_changes(route: str) -> st.SearchStrategy[FormChanges]:
    own = st.sampled_from(ROUTE_FIELDS[route])
    changed = own.flatmap(lambda name: st.tuples(st.just(name), field_value(name)))
    # One near miss alone is the likeliest to get through to the call and the database.
    one_near_miss = changed.map(lambda pair: FormChanges(frozenset(), dict([pair]), []))
    anything = st.builds(
        FormChanges,
        drop=st.frozensets(own, max_size=2),
        change=st.one_of(
            st.lists(changed, max_size=2).map(dict), st.dictionaries(FIELD, VALUE, max_size=2)
        ),
        extra=st.lists(st.tuples(st.one_of(own, FIELD), VALUE), max_size=2),
    )
    none = st.just(FormChanges(frozenset(), {}, []))
    return st.integers(0, 9).flatmap(
        lambda n: none if n in (0, 1, 2) else one_near_miss if n < 8 else anything
    )


def mostly(value: Any, others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``value`` about four times in five, else one of ``others``.

    Each request is mostly right on the wire (form-encoded, labelled so, signed), so that
    many get past the first check to the fields, the calls and the database. (Not
    ``one_of(just(value), just(value), ..., others)``: hypothesis does not pick the branches
    of one_of evenly, and the middle of a range is the least favoured.)
    """
    return st.integers(0, 9).flatmap(lambda n: others if n in (4, 5) else st.just(value))


FORM_TYPE = "application/x-www-form-urlencoded"
# How the form goes on the wire, and the Content-Type it is labelled with.
ENCODINGS = mostly("form", st.sampled_from(["latin-1", "json", "multipart", "raw"]))
CONTENT_TYPES = mostly(
    FORM_TYPE,
    st.sampled_from(
        [
            f"{FORM_TYPE}; charset=utf-8",
            f"{FORM_TYPE}; charset=latin-1",
            f"{FORM_TYPE}; charset=no-such-charset",
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=zz",
            "multipart/form-data",
            "application/octet-stream",
            None,
        ]
    ),
)
# "valid": signed over the URL and the form as Twilio signs; "empty": signed without the form.
SIGNATURES = mostly("valid", st.one_of(st.sampled_from(["empty", "missing"]), LATIN1))


@dataclass(frozen=True)
class Webhook:
    """One webhook request, symbolic where it depends on the server's state."""

    call: int | str  # an index into the calls the server knows, or any text
    turn: str  # "current", "previous", "next", or the text to send
    query: dict[str, str]  # more (or replaced) query parameters
    changes: FormChanges
    encoding: str
    content_type: str | None
    signature: str
    raw: bytes


def webhooks(route: str) -> st.SearchStrategy[Webhook]:
    return st.builds(
        Webhook,
        # 3: the route's URL names no call (an inbound call, a status without ?call=).
        call=mostly(0, st.one_of(st.sampled_from([1, 3]), TEXT)),
        turn=mostly(
            "current",
            st.one_of(
                st.sampled_from(["previous", "next", "-1", "0", "9" * 30, "1_0", "٣", "", " 1"]),
                TEXT,
            ),
        ),
        query=mostly(
            {},
            st.dictionaries(st.sampled_from(["typed", "waits", "recording", "sid", "sms"]), VALUE),
        ),
        changes=form_changes(route),
        encoding=ENCODINGS,
        content_type=CONTENT_TYPES,
        signature=SIGNATURES,
        raw=st.binary(max_size=64),
    )


# -- JSON ---------------------------------------------------------------------------------


class Raw(str):
    """JSON text spliced into a document as is (what json.dumps would never write)."""

    def __repr__(self) -> str:  # some are 60 kB: hypothesis prints failing examples
        return (
            f"Raw({str.__repr__(self[:24])} + {len(self) - 24} more)"
            if len(self) > 40
            else f"Raw({str.__repr__(self)})"
        )


RAW_JSON = [
    "[" * 30_000 + "]" * 30_000,
    '{"a":' * 20_000 + "0" + "}" * 20_000,
    "1" * 5000,
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "0.1e-99999",
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\u0000"',
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    VALUE,
    st.sampled_from(RAW_JSON).map(Raw),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)


def to_json(value: Any) -> str:
    """``value`` as JSON text, with any ``Raw`` part written as it is."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(to_json, value)) + "]"
    return json.dumps(value)


@dataclass(frozen=True)
class ApiRequest:
    """One API request: a route, a body built from a valid one, headers."""

    route: str
    number: str
    ident: str
    query: dict[str, str]
    drop: frozenset[str]
    change: dict[str, Any]
    whole: Any  # when not None, the body is this document instead
    spliced: tuple[str, Raw] | None  # a field set to JSON text json.dumps would never write
    encoding: str  # "json", "latin-1", "raw" or "none"
    content_type: str | None
    authorization: str
    raw: bytes


NUMBERS = st.one_of(
    st.sampled_from(
        [
            *("%2B12025550142", "+12025550142", "%2012025550142", "12025550142"),
            *("%2B1%20202%20555", "%FF", "%00", "%2B" + "9" * 40, "%2B1202555014x"),
            *("%25", "..", "%2F"),
        ]
    ),
    TEXT.map(lambda text: quote(text, safe="")),
)
API_ROUTES = [
    "POST notifications",
    "GET notifications",
    "GET notification",
    "DELETE notification",
    "PUT preferences",
    "GET contact",
    "PUT do-not-call",
    "DELETE do-not-call",
    "POST campaigns",
]
API_FIELDS = ["to", "plan", "variables", "category", "timezone", "not_before", "not_after"]
API_FIELDS += ["attempts", "idempotency_key", "callback_url", "categories", "reason"]
API_FIELDS += ["multiple_channels", "name", "rows", "calls_per_second", "window"]
API_VALUES = st.one_of(
    JSON,
    st.sampled_from(
        [
            {"max": 3, "retry_after": ["10m", "1h"]},
            {"max": 0},
            {"max": 3, "retry_after": "-5s"},
            {"max": 3, "retry_after": []},
            {"name": "Anna"},
            {"marketing": {"opt_out": True}},
            {"*": {"opt_out": "yes"}},
            "2031-11-24T10:00:00+00:00",
            "2031-11-24T10:00:00",
            "Europe/Berlin",
            "Nowhere/Town",
            "https://crm.example/hook",
            "delivery_notice",
            "order_status_line",
            [{"to": "+12025550142", "variables": {"name": "Anna"}}],
            [{"to": "+1 202 555 0142", "plan": "x"}, {}],
            "10:00-18:00",
            "18:00-10:00",
        ]
    ),
)


def _api_requests(route: str) -> st.SearchStrategy[ApiRequest]:
    return st.builds(
        ApiRequest,
        route=st.just(route),
        number=NUMBERS,
        ident=st.one_of(
            st.sampled_from(["known", "known", "unknown"]), TEXT.map(lambda t: quote(t, safe=""))
        ),
        query=st.dictionaries(st.sampled_from(["status", "plan", "to", "after", "limit"]), VALUE),
        drop=st.frozensets(st.sampled_from(API_FIELDS), max_size=2),
        change=st.dictionaries(
            st.one_of(st.sampled_from(API_FIELDS), TEXT), API_VALUES, max_size=3
        ),
        whole=st.one_of(st.none(), st.none(), st.none(), JSON),
        spliced=st.one_of(
            st.none(),
            *(st.tuples(st.sampled_from(API_FIELDS), st.just(Raw(text))) for text in RAW_JSON),
        ),
        encoding=st.sampled_from(["json", "json", "json", "json", "latin-1", "raw", "none"]),
        content_type=st.sampled_from(
            ["application/json"] * 4
            + ["application/json; charset=latin-1", "application/x+json", "text/plain", None]
        ),
        authorization=st.one_of(
            *[st.just("valid")] * 4,
            st.sampled_from(["missing", "Bearer", "Basic dXNlcjpwdw=="]),
            LATIN1.map(lambda text: "Bearer " + text),
        ),
        raw=st.binary(max_size=64),
    )


API_REQUESTS = {route: _api_requests(route) for route in API_ROUTES}
