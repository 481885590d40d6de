"""The gifts API's request and answer shapes (validated and described from here)."""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import Field

from mediasrv.httpkit.models import RequestModel, ResponseModel, text

#: Client request ids and idempotency keys: printable ASCII without spaces.
KEY_RULE = "1-128 characters: letters, digits, '_', '.', ':' or '-'"
Key = text(128, pattern="^[A-Za-z0-9_.:-]{1,128}$", rule=KEY_RULE)


@functools.cache
def credit_model(max_credit: int) -> type[RequestModel]:
    """The credit body for this server's ``gifts.max_credit``."""

    class Credit(RequestModel):
        coins: Annotated[int, Field(ge=1, le=max_credit)]
        idempotency_key: Key

    return Credit


@functools.cache
def send_model(gift_ids: tuple[str, ...]) -> type[RequestModel]:
    """The send body for this server's catalogue (``gifts.catalogue``): a gift id is one
    of the catalogue's."""

    class GiftSend(RequestModel):
        gift_id: Literal[gift_ids] = Field(description="a gift of the catalogue (GET /api/gifts)")
        request_id: Key

    return GiftSend


class LeaderboardQuery(RequestModel):
    scope: Literal["all", "broadcast"] = Field("all", description="all: all time; broadcast: the live broadcast")


class Gift(ResponseModel):
    id: str
    name: str
    price: int = Field(description="coins")
    image: str | None
    value: str = Field(description="money, decimal")


class Catalogue(ResponseModel):
    gifts: list[Gift]
    currency: str
    coin_value: str
    platform_share: str


class Wallet(ResponseModel):
    handle: str
    balance: int


class Credited(ResponseModel):
    handle: str
    coins: int
    idempotency_key: str
    balance: int
    replayed: bool


class GiftRecord(ResponseModel):
    id: str
    request_id: str
    gift_id: str
    stream: str
    coins: int
    creator_coins: int
    platform_coins: int
    created_at: float


class GiftSent(ResponseModel):
    gift: GiftRecord
    balance: int
    replayed: bool


class Gifter(ResponseModel):
    rank: int
    user: str
    display_name: str
    coins: int
    gifts: int


class Leaderboard(ResponseModel):
    stream: str
    scope: Literal["all", "broadcast"]
    live: bool
    gifters: list[Gifter]


class Earnings(ResponseModel):
    handle: str
    coins: int = Field(description="the creator's coins: gross_coins minus platform_coins")
    gifts: int = Field(description="gifts received")
    money: str = Field(description="decimal, coins × gifts.coin_value")
    currency: str
    gross_coins: int = Field(description="coins viewers sent in gifts (each gift's price)")
    platform_coins: int = Field(description="the platform's share of gross_coins (gifts.platform_share)")
    platform_share: str = Field(description="gifts.platform_share now, a decimal fraction (0.5: half)")


class LedgerSummary(ResponseModel):
    credited: int
    credits: int
    balances: int
    creator_earnings: int
    platform: int
    gifts: int
    gifts_coins: int
    gifts_creator_coins: int
    gifts_platform_coins: int
    balanced: bool = Field(description="credited == balances + creator_earnings + platform")
