"""Gift accounting rules: integer coins only, so the ledger sums exactly.

A gift of ``price`` coins is split into the creator's earnings and the platform's share;
the creator's part is rounded down and the remainder goes to the platform, so
``creator + platform == price`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True, slots=True)
class GiftSplit:
    price: int
    creator: int
    platform: int


def split_gift(price: int, platform_share: Decimal | float | str) -> GiftSplit:
    """Split ``price`` coins; ``platform_share`` is a fraction in [0, 1]."""
    if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
        raise ValueError("a gift's price is a positive whole number of coins")
    share = Decimal(str(platform_share))
    if not Decimal(0) <= share <= Decimal(1):
        raise ValueError("platform_share must be between 0 and 1")
    creator = int((Decimal(price) * (Decimal(1) - share)).to_integral_value(rounding="ROUND_FLOOR"))
    return GiftSplit(price, creator, price - creator)


def coins_to_money(coins: int, coin_value: Decimal | float | str) -> Decimal:
    """Money value of ``coins`` (e.g. 0.01 per coin), to the cent, banker's rounding."""
    return (Decimal(coins) * Decimal(str(coin_value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
