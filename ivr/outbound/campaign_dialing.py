"""What a campaign adds to the scheduler's decision to dial: its window and its pace.

Pure apart from the clock passed in. The scheduler asks ``window_opening`` after the policy
said "call now", and ``hold_until`` when the campaign's dial slot (``CampaignRepository.admit``)
is further away than ``SLOT_HORIZON``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.outbound.policy import (
    CallWindow,
    PolicySettings,
    calling_window,
    is_allowed,
    next_allowed,
    recipient_timezone,
)
from ivr.store import Admission, CampaignRecord, NotificationRecord

log = logging.getLogger(__name__)

# A dial slot at most this far away is taken and waited for; a later one is left for a later
# round (the notification is released until then), so no worker sleeps on a slow campaign.
SLOT_HORIZON = 1.0
# Alternating between two daily windows meets their overlap within a few rounds (each round
# moves to the next opening of one of them); this bounds it when they do not overlap at all.
_MAX_ROUNDS = 64


def next_in_windows(at: datetime, windows: list[CallWindow], tz: ZoneInfo) -> datetime:
    """The first moment from ``at`` inside every window of the recipient's wall clock."""
    for _ in range(_MAX_ROUNDS):
        for window in windows:
            at = next_allowed(at, window, tz)
        if all(is_allowed(at, window, tz) for window in windows):
            return at
    log.warning("windows %s never overlap in %s", ", ".join(map(str, windows)), tz.key)
    return at


class CampaignPacer:
    def __init__(self, policy: PolicySettings) -> None:
        self.policy = policy
        # Per campaign, the latest moment a held notification was released to: the next one
        # goes a slot later, so a backlog comes due one by one instead of all at once.
        self._held: dict[str, datetime] = {}

    def window_opening(
        self, campaign: CampaignRecord, n: NotificationRecord, contact_tz: str | None, now: datetime
    ) -> datetime | None:
        """None when the campaign's daily window allows a call now; else when it next does
        (inside the global calling window too)."""
        if campaign.window_start is None or campaign.window_end is None:
            return None
        window = CallWindow(campaign.window_start, campaign.window_end)
        tz = recipient_timezone(n.to_number, n.timezone, contact_tz, self.policy.default_timezone)
        if is_allowed(now, window, tz):
            return None
        return next_in_windows(now, [window, calling_window(n.category, self.policy)], tz)

    def hold_until(self, campaign: CampaignRecord, admission: Admission, now: datetime) -> datetime:
        """When to look again at a notification its campaign did not admit (paused: now, the
        claim then leaves it alone until the campaign resumes)."""
        if admission.retry_at is None or not campaign.calls_per_second:
            return now
        gap = timedelta(seconds=1.0 / campaign.calls_per_second)
        previous = self._held.get(campaign.id)
        at = admission.retry_at if previous is None else max(admission.retry_at, previous + gap)
        self._held[campaign.id] = at
        return at
