"""Every long-lived component of a node, built once with its dependencies, started in
dependency order and stopped in reverse.

``Components.start()`` builds and starts, in this order: the outgoing HTTP client, the
store, analytics and the stream monitor, the HLS service, the transcoder, accounts,
thumbnails, webhooks and go-live alerts, the recorder, the chat (with moderation as its
room policy), gifts, the cluster bus, the live control (backstage, ending a live: every
publish's policy), and last the ingests (the RTMP/RTMPS listeners, the WHIP server): no
publisher can reach a service that is not ready (an early publisher used to meet "accounts
are not available yet"). ``stop()`` undoes each step in reverse, after ending every stream so
playlists get ``EXT-X-ENDLIST`` and recordings their last segment.

Where one feature calls another it is through a constructor argument (a callable or a
small typed interface: the chat's room policy, the recorder's hooks, the cluster relay),
never by setting an attribute on a component after it was built.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Callable

import aiohttp

from mediasrv.cluster import ClusterBus, OriginFetcher
from mediasrv.cluster.node import advertise_url, node_id
from mediasrv.community.accounts.login_limit import LoginLimiter
from mediasrv.community.accounts.mailer import Mailer
from mediasrv.community.accounts.signup_limit import MailLimiter, RegistrationLimiter
from mediasrv.community.accounts.relations import Relations
from mediasrv.community.accounts.suspensions import Suspensions
from mediasrv.community.accounts.service import AccountService
from mediasrv.community.alerts.service import AlertHub, GoLiveNotifier
from mediasrv.community.alerts.webhooks import WebhookSender
from mediasrv.community.chat.transport import Flusher
from mediasrv.community.discovery.thumbnails import ThumbnailService
from mediasrv.community.gifts.service import GiftService
from mediasrv.community.live.gate import GrantGate
from mediasrv.community.live.service import LiveControl
from mediasrv.community.moderation.service import moderated_chat
from mediasrv.config import Config
from mediasrv.delivery.hls_service import HlsService
from mediasrv.image_pool import DecodePool
from mediasrv.hub import Hub, StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.hub.stream import StreamState
from mediasrv.httpkit.keys import (
    ACCOUNTS,
    ALERTS,
    ANALYTICS,
    CHAT,
    CHAT_FLUSHER,
    CLIENT_SESSION,
    CLUSTER,
    EDGE,
    GIFTS,
    LIVE,
    LOGIN_LIMITER,
    MAIL_LIMITER,
    REGISTRATION_LIMITER,
    MODERATION,
    MONITOR,
    NOTIFIER,
    RECORDER,
    RTMP_SERVER,
    STORE,
    THUMBNAILS,
    TRANSCODE_SERVICE,
    WEBHOOKS,
    WHIP_SERVER,
)
from mediasrv.httpkit.urls import configured_base_url
from mediasrv.ingest.publish_auth import PublishAuthorizer
from mediasrv.ingest.rtmp_server import RtmpServer
from mediasrv.ingest.whip.server import WhipServer
from mediasrv.observe.analytics import LiveAnalytics
from mediasrv.observe.monitor import StreamMonitor
from mediasrv.observe.viewers import ViewerTracker
from mediasrv.recording.links import creator_hooks
from mediasrv.recording.recorder import Recorder
from mediasrv.store import SqliteStore
from mediasrv.tls import rtmp_context
from mediasrv.transcode.service import TranscodeService


@dataclass(frozen=True, slots=True)
class Clocks:
    """The clocks components read: ``wall`` (Unix seconds) and ``monotonic``. Tests pass
    their own to drive time instead of sleeping."""

    wall: Callable[[], float]
    monotonic: Callable[[], float]


@dataclass
class Components:
    """The node's components. Built before the application starts (``hub``, ``viewers``,
    ``hls``: routes need them from the first request) or in ``start()``."""

    config: Config
    clocks: Clocks
    hub: Hub
    viewers: ViewerTracker
    hls: HlsService
    #: Who may play a live stream (built with the application: the HLS routes ask it).
    playback: GrantGate
    #: Who blocked or muted whom (``ports.BlockList``; built with the application, loaded
    #: from the store when it opens).
    relations: Relations = field(default_factory=Relations)
    rtmp_port: int | None = None
    #: What ``start()`` built, by application key (``mediasrv.httpkit.keys``).
    started: dict = field(default_factory=dict)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def start(self) -> dict:
        """Build and start every component in dependency order, listeners last. Returns
        them by application key. On failure, what had started is stopped again."""
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self.started

    async def stop(self) -> None:
        """Stop every component in the reverse order of ``start()``."""
        await self._stack.aclose()

    async def _start(self) -> None:
        config, clocks, hub, stack, put = self.config, self.clocks, self.hub, self._stack, self.started.__setitem__
        session = await stack.enter_async_context(aiohttp.ClientSession())
        put(CLIENT_SESSION, session)

        store = await asyncio.to_thread(SqliteStore, config.data_path / "mediasrv.db")
        stack.callback(store.close)
        put(STORE, store)

        analytics = LiveAnalytics(config.analytics, hub, store, clock=clocks.monotonic)
        transcode = TranscodeService(config, hub, self.hls) if config.transcode.enabled else None
        monitor = StreamMonitor(
            hub, self.viewers, store,
            segment_duration=config.hls.segment_duration,
            keep_after_end=config.hls.keep_after_end,
            ingest_stats=lambda name: _ingest_stats(hub, name),
            transcode_stats=transcode.rung_speeds if transcode is not None else (lambda name: {}),
            analytics=analytics,
            clock=clocks.wall,
        )
        put(ANALYTICS, analytics)
        put(MONITOR, monitor)
        await monitor.start()
        stack.push_async_callback(monitor.stop)
        # Stopped before the monitor: the monitor still asks it for ended broadcasts' totals.
        stack.push_async_callback(analytics.stop)

        await self.hls.start()
        stack.push_async_callback(self.hls.stop)
        if transcode is not None:  # it adds renditions to the HLS service: after it, stopped before it
            put(TRANSCODE_SERVICE, transcode)
            await transcode.start()
            stack.push_async_callback(transcode.stop)

        # Covers are decoded in a bounded pool (issue 18: a storm of large covers).
        image_pool = DecodePool(config.images.decode_workers, config.images.decode_queue)
        stack.callback(image_pool.close)
        # A moderator or admin demoted may hold grants of any private live: revoked.
        # Suspending an account or demoting a live creator to viewer ends their live at once
        # (the live control, built below, as the studio's End live; reach: docs/security.md).
        suspensions = Suspensions(store, clock=clocks.wall, on_suspended=self._user_suspended)
        accounts = AccountService(store, config, clock=clocks.wall,
                                  on_operator_demoted=lambda user: self.playback.revoke_all(),
                                  image_pool=image_pool, mailer=Mailer(config.email) if config.email.enabled else None,
                                  on_creator_demoted=self._creator_demoted,
                                  relations=self.relations, suspensions=suspensions)
        await accounts.load()
        await asyncio.to_thread(store.purge_expired_tokens, clocks.wall())
        await accounts.bootstrap_admin()
        put(ACCOUNTS, accounts)
        accounts_config = config.accounts
        put(LOGIN_LIMITER, LoginLimiter(accounts_config.login_failures, accounts_config.login_window,
                                        ceiling=accounts_config.login_ceiling, clock=clocks.monotonic))
        put(REGISTRATION_LIMITER, RegistrationLimiter(
            accounts_config.registrations_per_address, accounts_config.registration_window,
            accounts_config.registrations_per_minute, clock=clocks.monotonic))
        put(MAIL_LIMITER, MailLimiter(config.email.mails_per_hour, clock=clocks.monotonic))

        bus = fetcher = None
        if config.cluster.redis_url:
            me = node_id(config)
            fetcher = OriginFetcher(me, cache_bytes=config.cluster.edge_cache_mb * 1024 * 1024)
            bus = ClusterBus(
                config.cluster, node_id=me, advertise_url=advertise_url(config),
                local_streams=lambda: _local_streams(hub),
                local_viewers=lambda: self._viewers_by_stream(),
                # The chat and the notifier are built below; the bus delivers to them only
                # once it has started, after both exist.
                on_chat=lambda room, frame: chat.deliver_remote(room, frame),
                on_alert=lambda message: notifier.deliver_remote(message),
                clock=clocks.monotonic,
            )
            put(CLUSTER, bus)
            put(EDGE, fetcher)

        thumbnails = ThumbnailService(hub, interval=config.thumbnails.interval, width=config.thumbnails.width,
                                      clock=clocks.wall)
        webhooks = WebhookSender(config.webhooks, lambda: session, clock=clocks.wall)
        alerts = AlertHub()
        notifier = GoLiveNotifier(hub, store, alerts, webhooks, accounts_mode=config.auth.mode == "accounts",
                                  public_url=lambda: configured_base_url(config),
                                  relay=bus.publish_alert if bus is not None else None)
        put(THUMBNAILS, thumbnails)
        put(WEBHOOKS, webhooks)
        put(ALERTS, alerts)
        put(NOTIFIER, notifier)
        await thumbnails.start()
        stack.push_async_callback(thumbnails.stop)
        await webhooks.start()
        stack.push_async_callback(webhooks.stop)
        await notifier.start()
        stack.push_async_callback(notifier.stop)
        stack.callback(alerts.close)

        recorder = Recorder(config.recording, hub, data_dir=config.data_dir,
                            segment_duration=config.hls.segment_duration,
                            hooks=creator_hooks(config, accounts=accounts, alerts=alerts, webhooks=webhooks),
                            clock=clocks.wall)
        put(RECORDER, recorder)
        await recorder.start()
        # Stopped after the hub ended every stream (see stop): each recording writes its
        # last segment and is marked ended first.
        stack.push_async_callback(recorder.stop)

        chat, moderation = moderated_chat(
            store, config, viewers=self._chat_viewers, is_live=self._is_live,
            relay=bus.publish_chat if bus is not None else None,
            message_listeners=(analytics.on_chat_message,), clock=clocks.wall, monotonic=clocks.monotonic,
            # A removed moderator's grants of the creator's private live stop working now.
            on_moderator_removed=self.playback.revoke,
            relations=self.relations, suspended=suspensions.is_suspended)
        put(MODERATION, moderation)
        put(CHAT, chat)
        put(CHAT_FLUSHER, Flusher(config.chat.flush_interval, config.chat.batch_above))
        hub.add_listener(chat.on_hub_event)
        await chat.start()
        stack.push_async_callback(chat.stop)
        stack.callback(hub.remove_listener, chat.on_hub_event)
        # A user banned from a creator's chat cannot send them gifts either (issue 8).
        # Nor can a user the creator blocked, nor a suspended account (issue 18).
        put(GIFTS, GiftService(config.gifts, store, hub, rooms=lambda: chat.rooms, on_gift=analytics.on_gift,
                               sender_refused=_gift_refusal(accounts, moderation.is_banned), clock=clocks.wall))

        if bus is not None:
            await fetcher.start()
            stack.push_async_callback(fetcher.stop)
            on_hub_event = _directory_listener(hub, bus)
            hub.add_listener(on_hub_event)
            await bus.start()
            stack.push_async_callback(bus.stop)
            stack.callback(hub.remove_listener, on_hub_event)

        # Backstage and ending a live from the studio: the policy of every publish (RTMP,
        # WHIP), the creator's actions, who may watch a private live.
        rechecks: set[asyncio.Task] = set()

        def recheck_chat(name: str) -> None:
            # Who may watch changed (issue 18): the chat's members are asked again.
            task = asyncio.get_running_loop().create_task(chat.recheck(name, lambda user: live.may_chat(name, user)))
            rechecks.add(task)
            task.add_done_callback(rechecks.discard)

        live = LiveControl(config.live, hub, self.playback, accounts=accounts, moderators=moderation,
                           monotonic=clocks.monotonic, on_audience_changed=recheck_chat)
        put(LIVE, live)

        # Every stream ends before the services above stop (stop runs this first, after
        # the listeners): playlists get EXT-X-ENDLIST and readers finish.
        stack.callback(hub.close)

        if config.cluster.ingest:  # a pure edge (docs/cluster.md) takes no publishers
            authorizer = PublishAuthorizer(config.auth, session, accounts=accounts, policy=live)
            rtmp_server = RtmpServer(config.rtmp, hub, authorizer, playback=self.playback)
            address = config.rtmp.address
            await rtmp_server.start(address.host, address.port if self.rtmp_port is None else self.rtmp_port)
            stack.push_async_callback(rtmp_server.stop)
            tls_address = config.rtmp.tls_address
            if tls_address is not None:
                await rtmp_server.start_tls(tls_address.host, tls_address.port, rtmp_context(config))
            put(RTMP_SERVER, rtmp_server)
            if config.webrtc.enabled:
                # WHIP publishes through the HTTP listener, which `mediasrv serve` starts
                # after this: like RTMP's, its sessions end first when the node stops.
                whip = WhipServer(config.webrtc, hub, authorizer, app=config.rtmp.app,
                                  keyframe_interval=config.hls.segment_duration, monotonic=clocks.monotonic)
                await whip.start()
                stack.push_async_callback(whip.stop)
                put(WHIP_SERVER, whip)

    # --- what one feature asks of the others, answered here -----------------------------

    def _end_live(self, handle: str, reason: str) -> bool:
        live = self.started.get(LIVE)
        return live.end_if_live(handle, reason) if live is not None else bool(self.hub.stop(handle, reason))

    def _user_suspended(self, user, suspension) -> None:
        """A suspended account: its live ends at once, its chat connections and alert feeds close."""
        self._end_live(user.handle, SUSPENDED_REASON)
        chat = self.started.get(CHAT)
        if chat is not None:
            chat.disconnect_user(user.id, "this account is suspended")
        alerts = self.started.get(ALERTS)
        if alerts is not None:
            alerts.close_user(user.id)

    def _creator_demoted(self, user) -> None:
        """A creator made a viewer cannot be live: their live ends."""
        self._end_live(user.handle, DEMOTED_REASON)

    def user_blocked(self, owner, other) -> None:
        """``owner`` blocked ``other``: ``other``'s chat connections in ``owner``'s rooms close."""
        chat = self.started.get(CHAT)
        if chat is not None:
            chat.disconnect_user(other.id, f"{owner.handle} blocked you", owner_id=owner.id)

    def _is_live(self, name: str) -> bool:
        # A private (backstage) broadcast is not live for the public yet; one with another
        # visibility is live (its chat is open to who may watch).
        stream = self.hub.get(name)
        return stream is not None and not stream.private or self._origin(name) is not None

    def _origin(self, name: str):
        bus = self.started.get(CLUSTER)
        if bus is None or self.hub.get(name) is not None:
            return None
        return bus.origin(name)

    def _viewers_total(self, name: str, local: int) -> int:
        bus = self.started.get(CLUSTER)
        return local if bus is None else bus.total_viewers(name, local)

    def _chat_viewers(self, name: str) -> int | None:
        accounts = self.started.get(ACCOUNTS)
        if accounts is not None and accounts.privacy.hidden(name):
            return None  # the creator hides the count: the chat's state and frames carry null
        if self._origin(name) is not None:  # served here for another node
            audience = self.viewers.streams.get(name)
            return self._viewers_total(name, audience.concurrent if audience is not None else 0)
        health = self.started[MONITOR].streams.get(name)
        if health is None or health.ended_at is not None:
            return 0
        return self._viewers_total(name, health.audience.concurrent)

    def _viewers_by_stream(self) -> dict[str, int]:
        """This node's viewer sessions by stream, for the cluster's sums; audiences of other
        nodes' streams that left the directory with nobody watching are dropped first."""
        bus, monitor = self.started[CLUSTER], self.started.get(MONITOR)
        for name, audience in list(self.viewers.streams.items()):
            if (audience.concurrent == 0 and self.hub.get(name) is None and bus.origin(name) is None
                    and (monitor is None or name not in monitor.streams)):
                self.viewers.forget(name)
        return {name: audience.concurrent for name, audience in list(self.viewers.streams.items())}


#: What the viewers are told when the platform ends a live (the chat's ``stream-ended``).
SUSPENDED_REASON = "The live was ended by an operator."
DEMOTED_REASON = "The live was ended: this account can no longer go live."


def _gift_refusal(accounts: AccountService, banned):
    """The gifts' ``sender_refused``: a user the creator blocked, a suspended account, or
    one banned from the creator's chats (``banned``, moderation's)."""
    async def refused(creator_id: int, user_id: int) -> bool:
        if accounts.relations.blocks(creator_id, user_id) or accounts.suspensions.is_suspended(user_id):
            return True
        return await banned(creator_id, user_id)
    return refused


def _ingest_stats(hub: Hub, name: str):
    """The live publisher's ingest counters (RTMP's or WHIP's: each ingest puts its own
    in the stream's attributes, with ``video``/``audio`` timestamp corrections)."""
    stream = hub.get(name)
    return stream.attributes.get("ingest_stats") if stream is not None else None


def _local_streams(hub: Hub) -> list[tuple[str, float]]:
    # Private broadcasts stay out of the directory: no other node serves or lists them.
    return [(s.name, _public_start(s)) for s in hub.public_streams() if "/" not in s.name and s.state is not StreamState.ENDED]


def _public_start(stream) -> float:
    """When the public could first know of the broadcast: its start, or when it went public."""
    return stream.public_at if stream.public_at is not None else stream.started_at


def _directory_listener(hub: Hub, bus: ClusterBus):
    """Hub events into the cluster's stream directory (renditions are part of their broadcast;
    a private broadcast enters it when it is made public)."""
    def on_hub_event(event) -> None:
        name = event.stream.name
        if "/" in name:
            return
        if isinstance(event, StreamStarted) and not event.stream.private or isinstance(event, StreamWentPublic):
            bus.stream_started(name, _public_start(event.stream))
        elif isinstance(event, StreamEnded) and hub.get(name) is None:
            bus.stream_ended(name)
    return on_hub_event
