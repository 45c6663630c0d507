"""Dial plans: the YAML language, its loader and checks, and the pure engine."""

from ivr.dialplan.engine import step
from ivr.dialplan.loader import PlanError, PlanLoadError, PlanSet, load_plan, load_plans
from ivr.dialplan.schema import Plan
from ivr.dialplan.session import Session, new_session

__all__ = [
    "Plan",
    "PlanError",
    "PlanLoadError",
    "PlanSet",
    "Session",
    "load_plan",
    "load_plans",
    "new_session",
    "step",
]
