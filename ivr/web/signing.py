"""Signed, expiring URLs for prompt audio, so only the provider we sent them to can fetch them.

``<Play>`` URLs travel through the provider; anyone holding one could otherwise list or fetch
other callers' prompts (which contain names and appointment times).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode


def _digest(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def signed_path(key: bytes, path: str, expires: int) -> str:
    """``path?exp=...&sig=...``, valid until the Unix time ``expires``."""
    return f"{path}?{urlencode({'exp': expires, 'sig': _digest(key, path, expires)})}"


def verify_signed_path(key: bytes, path: str, expires: str, signature: str, now: float) -> bool:
    """True when ``signature`` is ours for ``path`` and ``expires`` has not passed."""
    try:
        until = int(expires)
    except ValueError:
        return False
    return until >= now and hmac.compare_digest(_digest(key, path, until), signature)


def load_secret_key(configured: str | None, var_dir: Path) -> bytes:
    """The configured key, else one kept in ``var_dir/secret.key`` (created once, mode 0600).

    Processes on one machine share the file; several machines need ``IVR_SECRET_KEY``.
    """
    if configured:
        return configured.encode()
    path = var_dir / "secret.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        candidate = path.with_suffix(f".{os.getpid()}.tmp")
        candidate.write_text(secrets.token_hex(32))
        candidate.chmod(0o600)
        # link() fails if another process created the key first; then we use theirs.
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip().encode()
