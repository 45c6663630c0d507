"""Loading dial plans from YAML files, with every error as ``file:line: state: message``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ivr.dialplan.checks import check_plan
from ivr.dialplan.schema import Plan
from ivr.dialplan.yamlio import LineMap, YamlError, load_yaml

PLAN_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PlanError:
    file: str
    line: int
    state: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.state or '(plan)'}: {self.message}"


class PlanLoadError(Exception):
    """Raised by the ``*_or_raise`` helpers; carries every error found."""

    def __init__(self, errors: Sequence[PlanError]) -> None:
        super().__init__("\n".join(map(str, errors)))
        self.errors = list(errors)


def describe_error(error: ErrorDetails) -> tuple[tuple[str | int, ...], str | None, str]:
    loc = tuple(part for part in error["loc"] if part != "[key]")
    state = str(loc[1]) if len(loc) > 1 and loc[0] == "states" else None
    where = ".".join(map(str, loc[2:] if state else loc))
    if error["type"] == "extra_forbidden":
        return loc, state, f"unknown field {loc[-1]!r}"
    if error["type"] == "missing":
        return loc, state, f"missing field {loc[-1]!r}"
    message = error["msg"].removeprefix("Value error, ")
    return loc, state, f"{where}: {message}" if where else message


def _parse(text: str, file: str, audio_dir: Path | None) -> tuple[Plan | None, list[PlanError]]:
    try:
        data, lines = load_yaml(text)
    except YamlError as exc:
        state = str(exc.path[1]) if len(exc.path) > 1 and exc.path[0] == "states" else None
        return None, [PlanError(file, exc.line, state, exc.message)]
    if not isinstance(data, dict):
        return None, [PlanError(file, 1, None, "a dial plan is a YAML mapping (id, states, ...)")]
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        errors = []
        for detail in exc.errors():
            loc, state, message = describe_error(detail)
            errors.append(PlanError(file, lines.line_of(loc), state, message))
        return None, errors
    return plan, _semantic_errors(plan, lines, file, audio_dir)


def _semantic_errors(plan: Plan, lines: LineMap, file: str, audio: Path | None) -> list[PlanError]:
    return [
        PlanError(file, lines.line_of(f.path), f.state, f.message) for f in check_plan(plan, audio)
    ]


def load_plan(path: Path, audio_dir: Path | None = None) -> tuple[Plan | None, list[PlanError]]:
    """The plan in ``path`` and every error found in it (a plan with errors is not returned)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [PlanError(str(path), 1, None, f"cannot read: {exc}")]
    plan, errors = _parse(text, str(path), audio_dir)
    return (None if errors else plan), errors


def load_plan_text(text: str, name: str = "<text>") -> Plan:
    """Parse a plan from text; raises ``PlanLoadError`` listing every error."""
    plan, errors = _parse(text, name, None)
    if errors or plan is None:
        raise PlanLoadError(errors)
    return plan


def plan_files(paths: Iterable[Path]) -> list[Path]:
    """The plan files named by ``paths``: files as given, directories searched recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in PLAN_SUFFIXES)
        else:
            found.append(path)
    return found


@dataclass
class PlanSet:
    """Every loaded plan, by id and by the inbound numbers they answer."""

    plans: dict[str, Plan]
    files: dict[str, Path]

    def by_number(self, number: str) -> Plan | None:
        for plan in self.plans.values():
            if plan.direction == "inbound" and number in plan.numbers:
                return plan
        return None


def load_plans(
    paths: Iterable[Path], audio_dir: Path | None = None
) -> tuple[PlanSet, list[PlanError]]:
    """Load every plan under ``paths``; errors include ids and numbers used twice."""
    plans: dict[str, Plan] = {}
    files: dict[str, Path] = {}
    numbers: dict[str, str] = {}
    errors: list[PlanError] = []
    for path in plan_files(paths):
        plan, plan_errors = load_plan(path, audio_dir)
        errors += plan_errors
        if plan is None:
            continue
        if plan.id in plans:
            errors.append(
                PlanError(
                    str(path), 1, None, f"plan id {plan.id!r} is also used by {files[plan.id]}"
                )
            )
            continue
        for number in plan.numbers:
            if number in numbers:
                errors.append(
                    PlanError(
                        str(path),
                        1,
                        None,
                        f"number {number} is also answered by plan {numbers[number]!r}",
                    )
                )
            numbers[number] = plan.id
        plans[plan.id] = plan
        files[plan.id] = path
    return PlanSet(plans, files), errors


def load_plans_or_raise(paths: Iterable[Path], audio_dir: Path | None = None) -> PlanSet:
    plan_set, errors = load_plans(paths, audio_dir)
    if errors:
        raise PlanLoadError(errors)
    return plan_set
