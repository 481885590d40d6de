"""Go-live alerts: per-user Server-Sent Events feeds and the webhook events of streams.

``AlertHub`` keeps the open SSE feeds by user id (each a small queue; a slow client loses
its oldest alert rather than holding memory). ``GoLiveNotifier`` listens to the hub: when a
broadcast starts it sends ``stream.started`` to the webhooks and to the feeds of the
*connected* users who follow the creator (one store query over the connected users, not
over all followers); when it ends, ``stream.ended`` to the webhooks. The hub listener only
schedules a task, so publishing never waits on the store or the network.

A broadcast that starts private (backstage) is nobody's business yet: nothing is sent
until it is made public (``StreamWentPublic``), when ``stream.started`` goes out as it
would have at the start (its ``started_at`` is when it went public). One that ends
without having been public sends nothing at all.

Creator details (handle, title, ...) are attached only in ``auth.mode: accounts``: in the
other modes a stream name is not tied to an account, so nobody is alerted for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from mediasrv.hub import Hub, Stream, StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.community.alerts.webhooks import WebhookSender
from mediasrv.store.accounts import AccountStore

log = logging.getLogger("mediasrv.alerts")

FEED_QUEUE = 32


def iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _public_start(stream: Stream) -> float:
    """When the public could first know of the broadcast (its start, or when it went public)."""
    return stream.public_at if stream.public_at is not None else stream.started_at


class AlertHub:
    """Open per-user event feeds (``app[ALERTS]``)."""

    def __init__(self) -> None:
        self._feeds: dict[int, set[asyncio.Queue]] = {}
        self.sent = 0
        self.dropped = 0

    def subscribe(self, user_id: int) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=FEED_QUEUE)
        self._feeds.setdefault(user_id, set()).add(queue)
        return queue

    def unsubscribe(self, user_id: int, queue: asyncio.Queue) -> None:
        feeds = self._feeds.get(user_id)
        if feeds is not None:
            feeds.discard(queue)
            if not feeds:
                del self._feeds[user_id]

    def connected_users(self) -> list[int]:
        return list(self._feeds)

    def deliver(self, user_ids, event: str, data: dict) -> None:
        for user_id in user_ids:
            for queue in self._feeds.get(user_id, ()):
                if queue.full():
                    queue.get_nowait()
                    self.dropped += 1
                queue.put_nowait((event, data))
                self.sent += 1

    def close_user(self, user_id: int) -> int:
        """End ``user_id``'s open feeds (their account was suspended); how many."""
        feeds = self._feeds.get(user_id, ())
        for queue in feeds:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        return len(feeds)

    def close(self) -> None:
        """End every feed (server shutdown)."""
        for feeds in self._feeds.values():
            for queue in feeds:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)


class GoLiveNotifier:
    """Turns hub events into ``stream.started``/``stream.ended`` webhooks and alerts."""

    def __init__(
        self,
        hub: Hub,
        store: AccountStore,
        alerts: AlertHub,
        webhooks: WebhookSender,
        *,
        accounts_mode: bool,
        public_url: Callable[[], str],
        relay: Callable[[dict], None] | None = None,
    ) -> None:
        self.hub = hub
        self.store = store
        self.alerts = alerts
        self.webhooks = webhooks
        self.accounts_mode = accounts_mode
        self.public_url = public_url
        self._tasks: set[asyncio.Task] = set()
        #: In a cluster: sends a go-live alert to the other nodes (``ClusterBus.publish_alert``).
        self.relay = relay

    async def start(self) -> None:
        self.hub.add_listener(self._on_event)

    async def stop(self) -> None:
        self.hub.remove_listener(self._on_event)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    def _on_event(self, event) -> None:
        if "/" in event.stream.name:  # renditions are not broadcasts
            return
        stream = event.stream
        # Who may watch (issue 18): followers are alerted (and the webhooks told) of a public
        # or followers-only live, never of an unlisted or private one (decided at its start).
        alerted = stream.visibility in ("public", "followers")
        if (isinstance(event, StreamStarted) and not stream.private or isinstance(event, StreamWentPublic)) and alerted:
            coro = self._started(stream)
        elif isinstance(event, StreamEnded) and stream.public_at is not None and alerted:
            coro = self._ended(stream)
        else:
            return  # a private broadcast: nothing to tell
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _describe(self, stream: Stream):
        base = self.public_url().rstrip("/")
        data = {
            "stream": stream.name,
            "started_at": iso(_public_start(stream)),
            "playback_url": f"{base}/live/{stream.name}/index.m3u8",
            "creator": None,
            "title": stream.name,
            "visibility": stream.visibility,
            "mature": stream.mature,
        }
        card = None
        if self.accounts_mode:
            cards = await asyncio.to_thread(self.store.creator_cards, [stream.name])
            card = cards.get(stream.name)
        if card is not None:
            data["creator"] = {"handle": card.user.handle, "display_name": card.user.display_name}
            data["title"] = card.settings.title or card.user.display_name
        return data, card

    async def _started(self, stream: Stream) -> None:
        try:
            data, card = await self._describe(stream)
            self.webhooks.send("stream.started", data)
            if card is not None:
                connected = self.alerts.connected_users()
                if connected:
                    followers = await asyncio.to_thread(self.store.followers_among, card.user.id, connected)
                    self.alerts.deliver(followers, "stream.started", data)
                if self.relay is not None:
                    self.relay({"event": "stream.started", "creator": card.user.handle, "data": data})
        except Exception:
            log.exception("stream %s: go-live notification failed", stream.name)

    def deliver_remote(self, message: dict) -> None:
        """A go-live alert from another node: to the feeds of the users connected here who
        follow its creator (found by handle in this node's accounts)."""
        handle, data = message.get("creator"), message.get("data")
        if not self.accounts_mode or message.get("event") != "stream.started" or not isinstance(handle, str) \
                or not isinstance(data, dict) or not self.alerts.connected_users():
            return
        task = asyncio.get_running_loop().create_task(self._deliver_remote(handle, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_remote(self, handle: str, data: dict) -> None:
        try:
            creator = await asyncio.to_thread(self.store.get_user_by_handle, handle)
            connected = self.alerts.connected_users()
            if creator is not None and connected:
                followers = await asyncio.to_thread(self.store.followers_among, creator.id, connected)
                self.alerts.deliver(followers, "stream.started", data)
        except Exception:
            log.exception("go-live alert from another node (%s) failed", handle)

    async def _ended(self, stream: Stream) -> None:
        try:
            data, _ = await self._describe(stream)
            ended = stream.ended_at or time.time()
            data["ended_at"] = iso(ended)
            data["duration_seconds"] = round(ended - _public_start(stream), 3)
            self.webhooks.send("stream.ended", data)
        except Exception:
            log.exception("stream %s: end notification failed", stream.name)
