"""Console pages: the dial plans, their validation errors, state graph and "try it" panel.

The plans are read from the plans folder on every visit, not only from what the server
loaded at start-up: an operator editing a file sees its errors (file:line: state: message)
and tries the new version at once; the list says which plans the server itself is serving
and which changed on disk since (a restart serves them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.calls.services import Services
from ivr.dialplan.graph import mermaid
from ivr.dialplan.loader import PlanError, PlanSet, load_plans, plan_files
from ivr.dialplan.schema import Plan
from ivr.web.console import tryit
from ivr.web.console.render import render
from ivr.web.keys import SERVICES

VARIABLE_FIELD = "var."


@dataclass(frozen=True)
class PlanFile:
    """A plan as it is on disk now, and how it stands against what the server serves."""

    plan_id: str | None
    path: Path
    plan: Plan | None
    hash: str
    errors: list[PlanError] = field(default_factory=list)
    serving: str = "no"  # "yes", "changed" (restart to serve), "no"


@dataclass(frozen=True)
class OnDisk:
    files: list[PlanFile]
    errors: list[PlanError]  # every error, also of files whose plan could not be read

    def by_id(self, plan_id: str) -> PlanFile | None:
        return next((f for f in self.files if f.plan_id == plan_id), None)


def _file_hash(path: Path) -> str:
    # The same digest as services.plan_hashes: "unchanged" means what the server loaded.
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


# The last reading of the plans folder, by what its files looked like (path, size, mtime):
# validating every plan (templates compiled, audio files looked up) costs ~0.2 s, a stat of
# each file well under a millisecond. A file changed on disk changes the key.
_last_read: dict[str, tuple[tuple[Any, ...], PlanSet, list[PlanError]]] = {}


def _load(folder: Path, audio_dir: Path) -> tuple[PlanSet, list[PlanError]]:
    files = plan_files([folder])
    key = (str(audio_dir), *((str(f), *_stat(f)) for f in files))
    cached = _last_read.get(str(folder))
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    plan_set, errors = load_plans(files, audio_dir)
    _last_read[str(folder)] = (key, plan_set, errors)
    return plan_set, errors


def _stat(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _read_plans(services: Services) -> OnDisk:
    settings = services.settings
    plan_set, errors = _load(settings.dialplans, settings.audio_dir)
    files: list[PlanFile] = []
    errors_by_file: dict[str, list[PlanError]] = {}
    for error in errors:
        errors_by_file.setdefault(error.file, []).append(error)
    seen: set[str] = set()
    for plan_id, path in sorted(plan_set.files.items()):
        digest = _file_hash(path)
        loaded = services.hashes.get(plan_id)
        serving = "no" if loaded is None else "yes" if loaded == digest else "changed"
        plan = plan_set.plans[plan_id]
        files.append(PlanFile(plan_id, path, plan, digest, errors_by_file.get(str(path), []),
                              serving))  # fmt: skip
        seen.add(str(path))
    for file, file_errors in sorted(errors_by_file.items()):
        if file not in seen:
            files.append(PlanFile(None, Path(file), None, "", file_errors))
    return OnDisk(files, errors)


async def read_plans(services: Services) -> OnDisk:
    # Reading and validating the files is blocking work: not on the event loop.
    return await asyncio.to_thread(_read_plans, services)


async def index(request: web.Request) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    disk = await read_plans(services)
    missing = sorted(set(services.plans.plans) - {f.plan_id for f in disk.files})
    return render(
        request, "plans.html", files=disk.files, errors=disk.errors, missing=missing,
        folder=services.settings.dialplans,
    )  # fmt: skip


def _variables_form(plan: Plan, given: dict[str, str] | None) -> list[dict[str, Any]]:
    today = dt.datetime.now(dt.UTC).date()
    return [
        {
            "name": name,
            "type": spec.type,
            "description": spec.description,
            "value": (given or {}).get(name, tryit.sample_value(name, spec, today)),
        }
        for name, spec in plan.variables.items()
    ]


async def _plan_page(
    request: web.Request,
    *,
    status: int = 200,
    given: dict[str, str] | None = None,
    call: tryit.TryIt | None = None,
    problems: dict[str, str] | None = None,
    error: str | None = None,
    disk: OnDisk | None = None,
) -> web.Response:
    services = request.config_dict[SERVICES]
    plan_id = request.match_info["plan_id"]
    disk = disk or await read_plans(services)
    file = disk.by_id(plan_id)
    plan = file.plan if file is not None else services.plan(plan_id)
    if plan is None:
        raise web.HTTPNotFound(text=f"no dial plan {plan_id!r}")
    try:
        source = file.path.read_text(encoding="utf-8") if file is not None else None
    except OSError:
        source = None
    return render(
        request, "plan.html", status=status, plan=plan, file=file, graph=mermaid(plan),
        source=source, variables=_variables_form(plan, given), call=call,
        problems=problems or {}, error=error,
    )  # fmt: skip


async def show(request: web.Request) -> web.StreamResponse:
    return await _plan_page(request)


async def try_it(request: web.Request) -> web.StreamResponse:
    """One turn of the try-it call (the middleware has checked the CSRF token)."""
    services = request.config_dict[SERVICES]
    plan_id = request.match_info["plan_id"]
    form = await request.post()
    given = {
        key.removeprefix(VARIABLE_FIELD): str(value)
        for key, value in form.items()
        if key.startswith(VARIABLE_FIELD)
    }
    disk = await read_plans(services)
    file = disk.by_id(plan_id)
    if file is None or file.plan is None:
        raise web.HTTPNotFound(text=f"no valid dial plan {plan_id!r} on disk to try")
    action = str(form.get("action", "start"))
    try:
        if action == "start":
            call = await tryit.start(file.plan, file.hash, services.secret, given)
        elif action in ("say", "silence", "hangup"):
            call = await tryit.reply(
                file.plan, file.hash, services.secret, str(form.get("token", "")),
                str(form.get("reply", "")), action,
            )  # fmt: skip
        else:
            return await _plan_page(request, status=400, given=given, disk=disk,
                                    error=f"unknown action {action!r}")  # fmt: skip
    except tryit.VariableError as exc:
        return await _plan_page(request, status=422, given=given, problems=exc.problems, disk=disk)
    except tryit.TryItError as exc:
        return await _plan_page(request, status=409, given=given, error=str(exc), disk=disk)
    return await _plan_page(request, given=given, call=call, disk=disk)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/plans", index),
        web.get("/plans/{plan_id}", show),
        web.post("/plans/{plan_id}/try", try_it),
    ]
