"""Audio URLs are signed and expire."""

from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ivr.web.signing import load_secret_key, signed_path, verify_signed_path

KEY = b"k" * 32


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["exp"][0], query["sig"][0]


def test_signed_path_verifies_until_it_expires() -> None:
    path, exp, sig = _parts(signed_path(KEY, "/audio/abc.wav", 1000))
    assert path == "/audio/abc.wav"
    assert verify_signed_path(KEY, path, exp, sig, now=999)
    assert verify_signed_path(KEY, path, exp, sig, now=1000)
    assert not verify_signed_path(KEY, path, exp, sig, now=1001)


def test_tampering_is_rejected() -> None:
    path, exp, sig = _parts(signed_path(KEY, "/audio/abc.wav", 1000))
    assert not verify_signed_path(KEY, "/audio/abd.wav", exp, sig, now=0)
    assert not verify_signed_path(KEY, path, "2000", sig, now=0)
    assert not verify_signed_path(KEY, path, "soon", sig, now=0)
    assert not verify_signed_path(b"other", path, exp, sig, now=0)
    assert not verify_signed_path(
        KEY, path, exp, sig[:-1] + "0" if sig[-1] != "0" else sig[:-1] + "1", now=0
    )


def _key_in(var_dir: str) -> bytes:
    return load_secret_key(None, Path(var_dir))


def test_generated_key_is_shared_by_processes(tmp_path: Path) -> None:
    with get_context("spawn").Pool(4) as pool:
        keys = pool.map(_key_in, [str(tmp_path)] * 8)
    assert len(set(keys)) == 1
    assert len(keys[0]) == 64
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / "secret.key"]
    assert load_secret_key("configured", tmp_path) == b"configured"
