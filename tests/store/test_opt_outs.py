"""Opt-outs per number and category; '*' covers every optional category."""

from __future__ import annotations

import pytest

from ivr.store import ALL_CATEGORIES, OptOutSource, Store
from tests.store.samples import CALLER

OTHER = "+12025550188"


async def test_opting_out_is_idempotent(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.opt_outs.opt_out(CALLER, "marketing", OptOutSource.IVR, "said stop")
    async with store.transaction() as tx:
        again = await tx.opt_outs.opt_out(CALLER, "marketing", OptOutSource.API, "asked by email")
        rows = await tx.opt_outs.list(CALLER)
    assert rows == [again]
    assert again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    assert (again.source, again.reason) == (OptOutSource.API, "asked by email")


async def test_categories_are_separate(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.opt_outs.opt_out(CALLER, "marketing", OptOutSource.API)
        assert await tx.opt_outs.is_opted_out(CALLER, "marketing")
        assert not await tx.opt_outs.is_opted_out(CALLER, "news")
        assert not await tx.opt_outs.is_opted_out(OTHER, "marketing")


async def test_star_covers_every_category_until_opted_back_in(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.opt_outs.opt_out(CALLER, "news", OptOutSource.API)
        await tx.opt_outs.opt_out(CALLER, ALL_CATEGORIES, OptOutSource.SMS, "STOP")
        assert await tx.opt_outs.is_opted_out(CALLER, "marketing")
        assert await tx.opt_outs.is_opted_out(CALLER, "product_updates")
        # Opting in to one category removes its own row; '*' still covers it.
        assert await tx.opt_outs.opt_in(CALLER, "news") == 1
        assert await tx.opt_outs.is_opted_out(CALLER, "news")
        assert [row.category for row in await tx.opt_outs.list(CALLER)] == ["*"]
        # START: back in to everything.
        await tx.opt_outs.opt_out(CALLER, "marketing", OptOutSource.IVR)
        assert await tx.opt_outs.opt_in(CALLER, ALL_CATEGORIES) == 2
        assert not await tx.opt_outs.is_opted_out(CALLER, "marketing")
        assert await tx.opt_outs.list(CALLER) == []
        assert await tx.opt_outs.opt_in(CALLER, ALL_CATEGORIES) == 0


async def test_list_is_sorted_by_category(store: Store) -> None:
    async with store.transaction() as tx:
        for category in ("news", "*", "marketing"):
            await tx.opt_outs.opt_out(CALLER, category, OptOutSource.API)
        await tx.opt_outs.opt_out(OTHER, "news", OptOutSource.API)
        rows = await tx.opt_outs.list(CALLER)
    assert [row.category for row in rows] == ["*", "marketing", "news"]
    assert {row.number for row in rows} == {CALLER}


@pytest.mark.parametrize("number", ["12025550123", "+1 202 555 0123", "+0123", ""])
async def test_numbers_must_be_e164(store: Store, number: str) -> None:
    async with store.transaction() as tx:
        with pytest.raises(ValueError, match=r"E\.164"):
            await tx.opt_outs.opt_out(number, "marketing", OptOutSource.API)
        with pytest.raises(ValueError, match=r"E\.164"):
            await tx.opt_outs.is_opted_out(number, "marketing")
