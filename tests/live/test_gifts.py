"""Gift splits are exact in integer coins."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediasrv.community.gifts.rules import coins_to_money, split_gift


@given(st.integers(1, 10**9), st.decimals(0, 1, places=4))
def test_split_always_sums_to_the_price(price, share):
    split = split_gift(price, share)
    assert split.creator + split.platform == price
    assert split.creator >= 0 and split.platform >= 0


def test_half_share_rounds_in_the_platforms_favour():
    assert split_gift(101, "0.5") == split_gift(101, 0.5)
    assert (split_gift(101, "0.5").creator, split_gift(101, "0.5").platform) == (50, 51)


@pytest.mark.parametrize("price", [0, -1, 1.5, True])
def test_bad_prices(price):
    with pytest.raises(ValueError):
        split_gift(price, "0.5")


def test_money():
    assert coins_to_money(12345, "0.01") == Decimal("123.45")
