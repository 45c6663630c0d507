"""What a campaign looks like from outside: the create request, the view with its progress,
and the errors the campaign service raises (see campaigns.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ivr.outbound.campaign_csv import MAX_ROWS, RowError
from ivr.outbound.policy import CallWindow
from ivr.outbound.requests import MAX_IDEMPOTENCY_KEY
from ivr.store import FINAL_NOTIFICATION_STATUSES, CampaignRecord, CampaignState, Counts

MAX_CAMPAIGN_CPS = 1000.0
_FINAL = {s.value for s in FINAL_NOTIFICATION_STATUSES}


class CampaignRequest(BaseModel):
    """``POST /api/v1/campaigns`` as JSON; each row is a notification request without plan."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    plan: str
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS)
    calls_per_second: float | None = Field(default=None, gt=0, le=MAX_CAMPAIGN_CPS)
    window: str | None = Field(
        default=None, description="HH:MM-HH:MM in the recipient's zone, within the calling window"
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)


@dataclass(frozen=True)
class CampaignProgress:
    total: int
    by_status: dict[str, int]
    by_outcome: dict[str, int]


@dataclass(frozen=True)
class CampaignView:
    id: str
    name: str
    plan: str
    state: str  # active | paused | cancelled | done
    calls_per_second: float | None
    window: str | None
    created_at: datetime
    progress: CampaignProgress
    idempotency_key: str | None = None
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The campaign as the API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "plan": self.plan,
            "state": self.state,
            "calls_per_second": self.calls_per_second,
            "window": self.window,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "updated_at": self.updated_at.astimezone(UTC).isoformat() if self.updated_at else None,
            "progress": dataclasses.asdict(self.progress),
        }


@dataclass(frozen=True)
class Creation:
    """What a create returned, and whether it made a new campaign (False: idempotent replay)."""

    view: CampaignView | None
    errors: list[RowError]
    created: bool


class CampaignNotFound(LookupError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id!r}")
        self.campaign_id = campaign_id


class CampaignStateError(ValueError):
    """A change the campaign's state does not allow (resume a cancelled one, ...)."""

    def __init__(self, message: str, view: CampaignView) -> None:
        super().__init__(message)
        self.view = view


class IdempotencyConflict(ValueError):
    """The idempotency key names a campaign created from another request."""

    def __init__(self, key: str, view: CampaignView, why: str | None = None) -> None:
        super().__init__(
            f"idempotency key {key!r}: campaign {view.id} {why}"
            if why
            else f"idempotency key {key!r} was used for campaign {view.id} with a different request"
        )
        self.view = view


def window_text(record: CampaignRecord) -> str | None:
    if record.window_start is None or record.window_end is None:
        return None
    return str(CallWindow(record.window_start, record.window_end))


def campaign_window(record: CampaignRecord) -> CallWindow | None:
    if record.window_start is None or record.window_end is None:
        return None
    return CallWindow(record.window_start, record.window_end)


def campaign_view(record: CampaignRecord, counts: Counts) -> CampaignView:
    total = counts.total
    state = record.state.value
    finished = sum(n for status, n in counts.by_status.items() if status in _FINAL)
    if record.state is not CampaignState.CANCELLED and total and finished == total:
        state = CampaignState.DONE.value
    outcomes = {k: v for k, v in counts.by_outcome.items() if k is not None}
    return CampaignView(
        id=record.id, name=record.name, plan=record.plan_id, state=state,
        calls_per_second=record.calls_per_second, window=window_text(record),
        created_at=record.created_at,
        progress=CampaignProgress(total, dict(counts.by_status), outcomes),
        idempotency_key=record.idempotency_key, updated_at=record.updated_at,
    )  # fmt: skip
