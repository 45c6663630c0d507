"""Console password hashes: scrypt from the standard library, PBKDF2 also accepted.

A hash is one line without ``:`` or ``,`` so that ``IVR_CONSOLE_USERS=name:hash,name:hash``
can hold several: ``scrypt$N$r$p$salt$key`` (URL-safe base64, unpadded). ``pbkdf2_sha256$
iterations$salt$key`` is read too, for hashes made with other tools where scrypt is missing
(OpenSSL builds without it). Verifying costs ~50 ms of CPU and 16 MiB on purpose: callers
run it in a thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32
MIN_PASSWORD = 8


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=256 * 1024 * 1024
    )


def hash_password(password: str) -> str:
    """A new scrypt hash of ``password`` with a random salt."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a console password needs at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed``; False for a wrong password or a bad hash."""
    try:
        kind, *fields = hashed.split("$")
        if kind == "scrypt" and len(fields) == 5:
            n, r, p = (int(v) for v in fields[:3])
            salt, expected = _unb64(fields[3]), _unb64(fields[4])
            actual = _scrypt(password, salt, n, r, p)
        elif kind == "pbkdf2_sha256" and len(fields) == 3:
            salt, expected = _unb64(fields[1]), _unb64(fields[2])
            actual = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), salt, int(fields[0]), len(expected)
            )
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
