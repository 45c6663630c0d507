"""What a person asked for: their time zone, opt-outs per category, channels, do-not-call.

Shared by the JSON API (``/api/v1/contacts``, ``/api/v1/do-not-call``) and the ``ivr dnc``
commands. A number never seen before is a contact with the defaults, not an error: an
integrator may ask before anything was sent to it.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ivr.outbound.policy import PolicySettings, is_transactional
from ivr.outbound.policy_hours import zone
from ivr.outbound.requests import RequestError
from ivr.store import ALL_CATEGORIES, OptOutSource, Transaction

CATEGORY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
MAX_REASON_LENGTH = 500


class CategoryPreference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_out: StrictBool
    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


class ContactPreferences(BaseModel):
    """``PUT /api/v1/contacts/{number}/preferences``; every field is optional.

    ``timezone: null`` clears the contact's zone (the number's own zone applies again); a
    category left out keeps its current opt-out state. ``"*"`` stands for every optional
    category.
    """

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    categories: dict[str, CategoryPreference] = {}
    multiple_channels: StrictBool | None = None


class DoNotCallRequest(BaseModel):
    """``PUT /api/v1/do-not-call/{number}``: the body is optional."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


def check_preferences(preferences: ContactPreferences, policy: PolicySettings) -> None:
    """RequestError naming every field that cannot be applied."""
    problems: dict[str, str] = {}
    if preferences.timezone is not None:
        try:
            zone(preferences.timezone, "timezone")
        except ValueError as exc:
            problems["timezone"] = str(exc).removeprefix("timezone: ")
    for category, wish in preferences.categories.items():
        field = f"categories.{category}"
        if category != ALL_CATEGORIES and not re.fullmatch(CATEGORY_PATTERN, category):
            problems[field] = "a category is a name of letters, digits and _ (or * for all)"
        elif wish.opt_out and is_transactional(category, policy):
            problems[field] = (
                f"{category!r} is transactional: it is always delivered and cannot be opted out of"
            )
    if problems:
        raise RequestError(problems)


async def apply_preferences(tx: Transaction, number: str, preferences: ContactPreferences) -> None:
    """Store checked preferences (see check_preferences) for the E.164 ``number``."""
    changes: dict[str, Any] = {}
    if "timezone" in preferences.model_fields_set:
        changes["timezone"] = preferences.timezone
    if preferences.multiple_channels is not None:
        changes["multiple_channels"] = preferences.multiple_channels
    if changes:
        await tx.contacts.update(number, **changes)
    for category, wish in preferences.categories.items():
        if wish.opt_out:
            await tx.opt_outs.opt_out(number, category, OptOutSource.API, wish.reason)
        else:
            await tx.opt_outs.opt_in(number, category)


async def set_do_not_call(tx: Transaction, number: str, reason: str | None) -> None:
    await tx.contacts.update(number, do_not_call=True, do_not_call_reason=reason)


async def clear_do_not_call(tx: Transaction, number: str) -> bool:
    """Take ``number`` off the do-not-call list; False if it was not on it."""
    contact = await tx.contacts.get(number)
    if contact is None or not contact.do_not_call:
        return False
    await tx.contacts.update(number, do_not_call=False, do_not_call_reason=None)
    return True


async def contact_view(tx: Transaction, number: str) -> dict[str, Any]:
    """The contact's JSON (``GET /api/v1/contacts/{number}``), defaults for an unknown one."""
    contact = await tx.contacts.get(number)
    opt_outs = await tx.opt_outs.list(number)
    return {
        "number": number,
        "timezone": contact.timezone if contact else None,
        "multiple_channels": contact.multiple_channels if contact else False,
        "do_not_call": contact.do_not_call if contact else False,
        "do_not_call_reason": contact.do_not_call_reason if contact else None,
        "opt_outs": [
            {
                "category": row.category,
                "source": row.source.value,
                "reason": row.reason,
                "since": row.created_at.astimezone(UTC).isoformat(),
            }
            for row in opt_outs
        ],
    }


async def do_not_call_list(tx: Transaction) -> list[dict[str, Any]]:
    return [
        {"number": contact.number, "reason": contact.do_not_call_reason}
        for contact in await tx.contacts.do_not_call_list()
    ]
