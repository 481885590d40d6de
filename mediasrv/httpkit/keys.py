"""The aiohttp application's state: one ``web.AppKey`` per long-lived component.

The composition root (``mediasrv.app``) builds every component and stores it under these
keys when the application starts; route handlers read them from ``request.app``. This
module imports only types (under ``TYPE_CHECKING``), so any feature's routes can import
it without importing another feature: the keys are the one place the features meet.

A key whose component is optional (the transcoder, the cluster bus, the RTMP listener and
the WHIP server of a pure edge) is absent from the application when that component is off: read it with
``app.get(KEY)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from typing import Awaitable, Callable

    import aiohttp

    from mediasrv.cluster.bus import ClusterBus
    from mediasrv.cluster.edge import OriginFetcher
    from mediasrv.community.accounts.login_limit import LoginLimiter
    from mediasrv.community.accounts.signup_limit import MailLimiter, RegistrationLimiter
    from mediasrv.community.accounts.service import AccountService
    from mediasrv.community.alerts.service import AlertHub, GoLiveNotifier
    from mediasrv.community.alerts.webhooks import WebhookSender
    from mediasrv.community.chat.transport import Flusher
    from mediasrv.community.chat.service import ChatService
    from mediasrv.community.discovery.thumbnails import ThumbnailService
    from mediasrv.community.gifts.service import GiftService
    from mediasrv.community.live.service import LiveControl
    from mediasrv.community.moderation.service import ModerationService
    from mediasrv.config import Config
    from mediasrv.delivery.hls_service import HlsService
    from mediasrv.hub import Hub
    from mediasrv.ingest.rtmp_server import RtmpServer
    from mediasrv.ingest.whip.server import WhipServer
    from mediasrv.observe.analytics import LiveAnalytics
    from mediasrv.httpkit.stats import HttpStats
    from mediasrv.observe.monitor import StreamMonitor
    from mediasrv.observe.viewers import ViewerTracker
    from mediasrv.httpkit.url_signing import UrlSigner
    from mediasrv.ports import AnalyticsView, BlockList, PlaybackGate
    from mediasrv.recording.recorder import Recorder
    from mediasrv.store import SqliteStore, User
    from mediasrv.transcode.service import TranscodeService

# Set when the application is created (they exist before it starts).
CONFIG: web.AppKey[Config] = web.AppKey("config")
HUB: web.AppKey[Hub] = web.AppKey("hub")
STARTED_AT: web.AppKey[float] = web.AppKey("started_at")
VIEWERS: web.AppKey[ViewerTracker] = web.AppKey("viewers")
HTTP_STATS: web.AppKey[HttpStats] = web.AppKey("http_stats")
TRUSTED_PROXIES: web.AppKey[tuple] = web.AppKey("trusted_proxies")
HLS_SERVICE: web.AppKey[HlsService] = web.AppKey("hls_service")
#: Who may play a live stream (HLS, RTMP play, the stream's API answers).
PLAYBACK: web.AppKey[PlaybackGate] = web.AppKey("playback_gate")
#: Who blocked whom (``ports.BlockList``; ``community.accounts.relations.Relations``).
BLOCKS: web.AppKey[BlockList] = web.AppKey("blocks")
#: Signs the media URIs of non-public lives and recordings (issue 18; the cache checks them).
URL_SIGNER: web.AppKey[UrlSigner] = web.AppKey("url_signer")
#: Who is asking: the logged-in user of a request, or None (``community.accounts.http.
#: optional_user``; an invalid token is a 401), for the routes of features below the
#: accounts (observe) whose answer depends on it.
REQUESTER: web.AppKey[Callable[[web.Request], Awaitable[User | None]]] = web.AppKey("requester")
#: What the asker may read of a live's figures (``community.moderation.insight``), for
#: the observe routes: the creator's analytics are theirs (issue 18).
ANALYTICS_ACCESS: web.AppKey[Callable[[web.Request, str], Awaitable[AnalyticsView]]] = web.AppKey(
    "analytics_access")

# Set when the application starts, in the order the composition root starts them.
CLIENT_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("client_session")
STORE: web.AppKey[SqliteStore] = web.AppKey("store")
MONITOR: web.AppKey[StreamMonitor] = web.AppKey("monitor")
TRANSCODE_SERVICE: web.AppKey[TranscodeService] = web.AppKey("transcode_service")
RECORDER: web.AppKey[Recorder] = web.AppKey("recorder")
ACCOUNTS: web.AppKey[AccountService] = web.AppKey("accounts")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
REGISTRATION_LIMITER: web.AppKey[RegistrationLimiter] = web.AppKey("registration_limiter")
MAIL_LIMITER: web.AppKey[MailLimiter] = web.AppKey("mail_limiter")
THUMBNAILS: web.AppKey[ThumbnailService] = web.AppKey("thumbnails")
WEBHOOKS: web.AppKey[WebhookSender] = web.AppKey("webhooks")
ALERTS: web.AppKey[AlertHub] = web.AppKey("alerts")
NOTIFIER: web.AppKey[GoLiveNotifier] = web.AppKey("golive_notifier")
CHAT: web.AppKey[ChatService] = web.AppKey("chat")
CHAT_FLUSHER: web.AppKey[Flusher] = web.AppKey("chat_flusher")
CHAT_SOCKETS: web.AppKey[set] = web.AppKey("chat_sockets")
MODERATION: web.AppKey[ModerationService] = web.AppKey("moderation")
ANALYTICS: web.AppKey[LiveAnalytics] = web.AppKey("analytics")
GIFTS: web.AppKey[GiftService] = web.AppKey("gifts")
CLUSTER: web.AppKey[ClusterBus] = web.AppKey("cluster")
EDGE: web.AppKey[OriginFetcher] = web.AppKey("edge_fetcher")
RTMP_SERVER: web.AppKey[RtmpServer] = web.AppKey("rtmp_server")
#: Backstage and ending a live from the studio (``community.live``).
LIVE: web.AppKey[LiveControl] = web.AppKey("live_control")
#: WHIP ingest (absent with webrtc.enabled: false and on a pure edge).
WHIP_SERVER: web.AppKey[WhipServer] = web.AppKey("whip_server")
# Extra fields of a user's profile answer, one coroutine per feature that adds some
# (the recordings add the creator's saved VODs).
PROFILE_PARTS: web.AppKey[list] = web.AppKey("profile_parts")
