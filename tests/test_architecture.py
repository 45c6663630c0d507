"""The layering the README promises, checked on the source: the call runtime and the engine
know no provider and no web framework, the dialer knows no web layer, modules stay small.

Imports are read with ``ast`` from every module (function-level and ``TYPE_CHECKING`` imports
included), so a forbidden dependency cannot hide in a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IVR = ROOT / "ivr"

# What each package must not import (a name, or anything under it).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "ivr/calls": ("aiohttp", "ivr.web", "ivr.telephony.twilio", "ivr.telephony.simulator"),
    "ivr/dialplan": ("aiohttp", "ivr.web", "ivr.telephony", "ivr.calls", "ivr.store"),
    "ivr/outbound": ("ivr.web",),
}

MAX_LINES = 550
# Modules allowed over MAX_LINES, each with its reason; keep this list short.
LONG_MODULES: dict[str, str] = {}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    return imports_of(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            names.add(name)
            # ``from ivr.telephony import twilio`` imports the module ivr.telephony.twilio.
            names.update(f"{name}.{alias.name}" for alias in node.names)
    return names


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_forbidden(package: str) -> None:
    found = modules(package)
    assert found, f"{package}: no modules (moved?)"
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in found
        for name in sorted(imported(path))
        if any(is_under(name, prefix) for prefix in FORBIDDEN[package])
    ]
    assert not wrong, "\n".join(wrong)


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in modules("ivr")
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    unexplained = {path: n for path, n in long.items() if path not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines: {unexplained}"
    stale = sorted(set(LONG_MODULES) - set(long))
    assert not stale, f"no longer long, remove from LONG_MODULES: {stale}"


def test_the_checks_see_imports() -> None:
    """The import reader finds plain, from, relative, aliased and lazy imports."""
    assert "ivr.dialplan.vocabulary" in imported(IVR / "calls" / "dialect.py")
    source = (
        "import aiohttp.web as w\n"
        "from . import media\n"
        "from .service import CallService\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ivr.telephony import twilio\n"
        "def f():\n    from ivr.web import keys\n"
    )
    found = imports_of(source, "ivr.calls.probe")
    expected = {"aiohttp.web", "ivr.calls.media", "ivr.calls.service", "ivr.web.keys"}
    assert expected | {"ivr.telephony.twilio"} <= found
    assert "ivr.calls.media" in imports_of("from . import media", "ivr.calls", is_package=True)
    assert is_under("ivr.telephony.twilio.twiml", "ivr.telephony.twilio")
    assert not is_under("ivr.webhooks", "ivr.web")
