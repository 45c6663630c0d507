"""The state of one call as the engine sees it: small, JSON-serializable, resumable.

The server stores this after every step; a restarted process resumes a call from it alone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Waiting = Literal["answer", "input", "lookup", "done"]


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str
    variables: dict[str, Any] = {}
    state: str | None = None
    waiting: Waiting = "answer"
    retries: int = 0
    turns: int = 0
    outcome: str | None = None
    end_reason: str | None = None
    answered_by: str | None = None
    # Digits heard and read back to the caller, waiting for their yes or no.
    confirming: str | None = None

    @property
    def ended(self) -> bool:
        return self.waiting == "done"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        return cls.model_validate_json(text)


def new_session(plan_id: str, variables: dict[str, Any] | None = None) -> Session:
    return Session(plan_id=plan_id, variables=dict(variables or {}))
