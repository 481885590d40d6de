"""Virtual gifts: the catalogue, wallets, sending a gift into a stream's chat, earnings.

The money rules are in ``mediasrv.community.gifts.rules`` (the split) and the store
(``mediasrv.store.gifts``: one transaction per send); this is the asyncio side. A send
runs its transaction in a thread, then — only when coins actually moved, never for a
replayed request id — broadcasts a ``gift`` frame into the stream's chat room and counts
it in the live analytics. See docs/api.md (Gifts) and docs/chat.md (the gift frame).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Awaitable, Callable

from mediasrv.config import GiftConfig, GiftsConfig
from mediasrv.hub import Hub
from mediasrv.community.gifts.rules import coins_to_money, split_gift
from mediasrv.store import User
from mediasrv.store.gifts import (
    CreditRecord, GiftRecord, GiftStore, IdempotencyConflict, InsufficientCoins, LeaderboardRow, LedgerSummary,
)

log = logging.getLogger("mediasrv.gifts")

#: ``sender_refused(creator_id, user_id)``: True when the user may not send gifts to this
#: creator (e.g. banned from their chat).
SenderRefused = Callable[[int, int], Awaitable[bool]]


class GiftRefused(Exception):
    """A send or credit refused; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass(frozen=True, slots=True)
class Earnings:
    """A creator's gifts and how they split: ``gross_coins`` (what viewers sent, the figure
    the live dashboard and the chat show) == ``coins`` (the creator's) + ``platform_coins``
    (the ``gifts.platform_share`` kept, the creator's part of each gift rounded down)."""

    coins: int
    gifts: int
    money: Decimal
    currency: str
    gross_coins: int = 0
    platform_coins: int = 0
    platform_share: str = "0"

    def to_json(self) -> dict:
        return {"coins": self.coins, "gifts": self.gifts, "money": str(self.money), "currency": self.currency,
                "gross_coins": self.gross_coins, "platform_coins": self.platform_coins,
                "platform_share": self.platform_share}


class GiftService:
    def __init__(
        self,
        config: GiftsConfig,
        store: GiftStore,
        hub: Hub,
        *,
        rooms: Callable[[], dict] = dict,
        on_gift: Callable[[str, int, int], None] | None = None,
        sender_refused: SenderRefused | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.hub = hub
        #: The chat's rooms by stream name (``ChatService.rooms``); a gift shows in its room.
        self.rooms = rooms
        #: Called with (stream name, coins) for every gift that moved coins (analytics).
        self.on_gift = on_gift
        #: Refusal hook (moderation wires its ban check here); None: nobody is refused.
        self.sender_refused = sender_refused
        self.clock = clock
        self.catalogue: dict[str, GiftConfig] = {gift.id: gift for gift in config.catalogue}
        self.share = Decimal(str(config.platform_share))
        # Plain counters, read at scrape time.
        self.gifts_sent = 0
        self.gifts_refused = 0

    def money(self, coins: int) -> Decimal:
        return coins_to_money(coins, self.config.coin_value)

    def catalogue_json(self) -> list[dict]:
        return [{"id": g.id, "name": g.name, "price": g.price, "image": g.image or None,
                 "value": str(self.money(g.price))} for g in self.config.catalogue]

    # --- coins in ------------------------------------------------------------------------

    async def credit(self, user: User, coins: int, idempotency_key: str, by: User | None) -> CreditRecord:
        """Add coins to ``user``'s wallet once per ``idempotency_key``."""
        if not 1 <= coins <= self.config.max_credit:
            raise GiftRefused(400, f"coins: must be 1-{self.config.max_credit}, got {coins}")
        try:
            return await asyncio.to_thread(self.store.credit, user.id, coins, idempotency_key,
                                           by.id if by else None, self.clock())
        except IdempotencyConflict as exc:
            raise GiftRefused(409, str(exc)) from None

    # --- gifts ---------------------------------------------------------------------------

    async def send(self, sender: User, creator: User, stream_name: str, gift_id: str, request_id: str) -> GiftRecord:
        """Send gift ``gift_id`` to ``creator`` in stream ``stream_name``.

        Retrying with the same ``request_id`` returns the first answer (``replayed``) and
        charges nothing. Raises ``GiftRefused`` (400 unknown gift or self-gift, 402 too few
        coins, 403 refused by the hook, 409 request id used for another gift)."""
        gift = self.catalogue.get(gift_id)
        if gift is None:
            raise GiftRefused(400, f"gift_id: {gift_id[:32]!r} is not in the catalogue (GET /api/gifts)")
        if sender.id == creator.id:
            raise GiftRefused(422, "you cannot send a gift to yourself")
        if self.sender_refused is not None and await self.sender_refused(creator.id, sender.id):
            self.gifts_refused += 1
            raise GiftRefused(403, "you may not send gifts to this creator")
        split = split_gift(gift.price, self.share)
        stream = self.hub.get(stream_name)
        started_at = stream.started_at if stream is not None else None
        try:
            record = await asyncio.to_thread(
                self.store.send_gift, sender.id, request_id, creator.id, stream_name, started_at, gift.id,
                gift.price, split.creator, split.platform, self.clock())
        except InsufficientCoins as exc:
            self.gifts_refused += 1
            raise GiftRefused(402, str(exc), balance=exc.balance, price=exc.price) from None
        except IdempotencyConflict as exc:
            raise GiftRefused(409, str(exc)) from None
        if not record.replayed:
            self.gifts_sent += 1
            self._announce(sender, gift, record)
        return record

    def _announce(self, sender: User, gift: GiftConfig, record: GiftRecord) -> None:
        room = self.rooms().get(record.stream)
        if room is not None:
            # Those who blocked or muted the sender do not see their gift either.
            room.broadcast(self.frame(sender, gift, record), author_id=sender.id)
        if self.on_gift is not None and record.broadcast_started_at is not None:
            self.on_gift(record.stream, record.price, record.creator_coins)

    @staticmethod
    def frame(sender: User, gift: GiftConfig, record: GiftRecord) -> dict:
        """The chat frame everyone in the room sees (docs/chat.md)."""
        return {"type": "gift", "id": f"g{record.id}", "user": sender.handle, "display_name": sender.display_name,
                "gift": {"id": gift.id, "name": gift.name, "image": gift.image or None},
                "coins": record.price, "sent_at": round(record.created_at, 3)}

    # --- reading -------------------------------------------------------------------------

    async def balance(self, user: User) -> int:
        return await asyncio.to_thread(self.store.wallet_balance, user.id)

    async def earnings(self, creator: User) -> Earnings:
        coins, gifts = await asyncio.to_thread(self.store.earnings, creator.id)
        gross, _, platform = await asyncio.to_thread(self.store.gift_totals, creator.id)
        return Earnings(coins, gifts, self.money(coins), self.config.currency, gross, platform, str(self.share))

    async def leaderboard(self, creator: User, *, live_only: bool, stream_name: str) -> list[LeaderboardRow]:
        """Top gifters of a creator: all time, or (``live_only``) the current broadcast."""
        started_at = None
        if live_only:
            stream = self.hub.get(stream_name)
            if stream is None:
                return []
            started_at = stream.started_at
        return await asyncio.to_thread(self.store.leaderboard, creator.id, started_at, self.config.leaderboard_size)

    async def ledger_summary(self) -> LedgerSummary:
        return await asyncio.to_thread(self.store.ledger_summary)
