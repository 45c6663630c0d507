"""Session cookies and password hashes, without a browser."""

from __future__ import annotations

import time

import pytest

from ivr.config import ConfigError, Settings, load_settings
from ivr.web.console.auth import (
    ConsoleSession,
    Throttle,
    decode_session,
    encode_session,
    fingerprint,
    safe_next,
)
from ivr.web.console.passwords import hash_password, verify_password

SECRET = b"k" * 32


def test_a_session_cookie_is_signed_and_expires() -> None:
    session = ConsoleSession("alice", int(time.time()) + 60, "csrf-token", "f" * 24)
    value = encode_session(SECRET, session)
    assert decode_session(SECRET, value, time.time()) == session
    assert decode_session(b"another key", value, time.time()) is None
    assert decode_session(SECRET, value, time.time() + 61) is None
    payload, signature = value.split(".")
    assert decode_session(SECRET, payload + "x." + signature, time.time()) is None
    assert decode_session(SECRET, "garbage", time.time()) is None


def test_changing_a_credential_changes_its_fingerprint() -> None:
    hashed = hash_password("correct horse")
    settings = Settings(api_token="token-1", console_users={"alice": hashed})
    token_print = fingerprint(settings, None)
    alice_print = fingerprint(settings, "alice")
    assert token_print
    assert alice_print
    assert token_print != alice_print
    changed = Settings(api_token="token-2", console_users={"alice": hash_password("another one")})
    assert fingerprint(changed, None) != token_print
    assert fingerprint(changed, "alice") != alice_print
    assert fingerprint(Settings(), None) is None
    assert fingerprint(settings, "bob") is None


def test_password_hashes_verify_and_refuse() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("scrypt$16384$8$1$")
    assert ":" not in hashed
    assert "," not in hashed
    assert verify_password("correct horse", hashed)
    assert not verify_password("Correct horse", hashed)
    assert not verify_password("correct horse", "scrypt$bad")
    assert not verify_password("correct horse", "md5$whatever")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_pbkdf2_hashes_from_other_tools_are_accepted() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    key = hashlib.pbkdf2_hmac("sha256", b"correct horse", salt, 1000, 32)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    hashed = f"pbkdf2_sha256$1000${b64(salt)}${b64(key)}"
    assert verify_password("correct horse", hashed)
    assert not verify_password("wrong horse", hashed)


def test_console_users_from_the_environment() -> None:
    one, two = hash_password("password one"), hash_password("password two")
    settings = load_settings({"IVR_CONSOLE_USERS": f"alice:{one}, bob:{two}"})
    assert settings.console_users == {"alice": one, "bob": two}
    with pytest.raises(ConfigError, match="IVR_CONSOLE_USERS: 'alice' is not name:hash"):
        load_settings({"IVR_CONSOLE_USERS": "alice"})
    with pytest.raises(ConfigError, match="alice: not a password hash"):
        load_settings({"IVR_CONSOLE_USERS": "alice:plaintext"})


def test_sign_in_returns_only_to_console_pages() -> None:
    assert safe_next("/console/calls?x=1") == "/console/calls?x=1"
    for target in ("https://evil.example/", "//evil.example/console/", "/api/v1/x", None, ""):
        assert safe_next(target) == "/console/"


def test_failed_sign_ins_are_throttled_per_address_for_a_window() -> None:
    throttle = Throttle(limit=3, window=60)
    for _ in range(3):
        assert not throttle.blocked("10.0.0.1", 100.0)
        throttle.failed("10.0.0.1", 100.0)
    assert throttle.blocked("10.0.0.1", 100.0)
    assert not throttle.blocked("10.0.0.2", 100.0)
    assert not throttle.blocked("10.0.0.1", 161.0)


def test_the_session_cookie_is_secure_behind_https() -> None:
    from ivr.web.console.auth import _cookie_options

    assert _cookie_options(Settings(public_url="https://ivr.example"))["secure"] is True
    plain = _cookie_options(Settings(public_url="http://127.0.0.1:8080"))
    assert plain == {"path": "/console", "httponly": True, "samesite": "Strict", "secure": False}
