"""Helpers for the gift tests: the ledger invariant, a server with gifts, credits."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from mediasrv.store.gifts import LedgerSummary
from tests.accounts.support import Api, accounts_server


def assert_balanced(summary: LedgerSummary) -> None:
    """coins credited == balances + creator earnings + platform share, and the ledger
    rows sum to the same parts."""
    assert summary.credited == summary.balances + summary.creator_earnings + summary.platform, summary
    assert summary.gifts_coins == summary.credited - summary.balances, summary
    assert summary.gifts_creator_coins == summary.creator_earnings, summary
    assert summary.gifts_platform_coins == summary.platform, summary
    assert summary.balanced


@contextlib.asynccontextmanager
async def gifts_server(tmp_path, *overrides: str) -> AsyncIterator[Api]:
    """``accounts_server``; on the way out the ledger must balance (store and API agree)."""
    async with accounts_server(tmp_path, *overrides) as api:
        yield api
        summary = api.store.ledger_summary()
        assert_balanced(summary)
        response = await api.http.get("/api/ledger", headers=await api.admin())
        assert response.status == 200, await response.text()
        assert await response.json() == summary.to_json()


async def credit(api: Api, handle: str, coins: int, key: str, admin: dict | None = None) -> dict:
    response = await api.http.post(f"/api/users/{handle}/wallet/credits", json={"coins": coins, "idempotency_key": key},
                                   headers=admin or await api.admin())
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def send(api: Api, headers: dict, stream: str, gift_id: str, request_id: str):
    return await api.http.post(f"/api/streams/{stream}/gifts", json={"gift_id": gift_id, "request_id": request_id},
                               headers=headers)


async def balance(api: Api, headers: dict) -> int:
    response = await api.http.get("/api/me/wallet", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["balance"]
