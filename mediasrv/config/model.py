"""The configuration, declared once: each key with its type, default, bounds and meaning.

The models validate (``mediasrv.config.sources`` feeds them the YAML file, ``MEDIASRV_*``
variables and ``--set`` overrides), generate ``config/mediasrv.schema.json`` and tell
``check-config`` which values are secrets. ``config/mediasrv.yaml`` documents every key.
Rules that involve several keys are model validators of the smallest section holding
all of them; they raise ``Problem`` naming the key at fault.
"""

from __future__ import annotations

import ipaddress
import os
import typing
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediasrv.config.base import (
    GIFT_ID_RE,
    HANDLE_RE,
    STREAM_NAME_RE,
    ListenAddress,
    Problem,
    Secret,
    Section,
    listen_address,
)
from mediasrv.httpkit.forwarded import parse_networks

_HTTP_URL = r"https?://[^\s/?#]+\S*"
StreamName = Annotated[str, Field(pattern=f"^{STREAM_NAME_RE.pattern}$")]
HttpUrl = Annotated[str, Field(pattern=f"^{_HTTP_URL}$")]

#: Address and port of a listener: HOST:PORT, [V6]:PORT or :PORT (all interfaces).
_LISTEN_HELP = "HOST:PORT, [V6]:PORT or :PORT (all interfaces)"


def _listener(section: Section, key: str) -> ListenAddress:
    """Parse a section's listen key once, at validation; Problem names the key."""
    try:
        return listen_address(getattr(section, key))
    except ValueError as exc:
        raise Problem(key, str(exc)) from None


class RtmpConfig(Section):
    """The RTMP ingest listener (and the optional RTMPS one)."""

    listen: str = Field("0.0.0.0:1935", description=f"Address of the RTMP listener: {_LISTEN_HELP}.")
    app: str = Field("live", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                     description="Application name in the URL (rtmp://HOST/APP/KEY).")
    max_message_size: int = Field(8 * 1024 * 1024, ge=1024, le=1 << 30,
                                  description="Largest RTMP message accepted (bytes); bounds memory per connection.")
    max_connections: int = Field(1000, ge=1, le=1_000_000, description="Most RTMP connections open at once.")
    max_connections_per_address: int = Field(
        16, ge=1, le=1_000_000,
        description="Most RTMP connections open at once from one address (IP); more are closed at once, so one "
                    "address cannot hold every slot of max_connections.")
    max_handshakes_per_address: int = Field(
        4, ge=1, le=1_000_000,
        description="Most connections from one address still in their handshake (no publish or play yet); more "
                    "are closed at once.")
    handshake_timeout: float = Field(10.0, ge=0.1, le=3600,
                                     description="Seconds to complete the handshake and the connect/publish exchange.")
    idle_timeout: float = Field(30.0, ge=0.1, le=86400, description="Seconds without a byte from a peer before it is closed.")
    chunk_size: int = Field(4096, ge=128, le=0x7FFFFFFF, description="Our outgoing chunk size (bytes).")
    play_queue_units: int = Field(1024, ge=16, le=1_000_000,
                                  description="Units an RTMP player may have queued before it skips to a keyframe.")
    read_batch_ms: float = Field(30.0, ge=0, le=200,
                                 description="Milliseconds a publisher's bytes may gather before they are read (0: at once).")
    tls_listen: str = Field("", description=f"A second listener speaking RTMPS ({_LISTEN_HELP}); empty: none.")
    tls_cert: str = Field("", description="PEM certificate chain of the RTMPS listener (a file path).")
    tls_key: str = Field("", description="PEM private key of the RTMPS listener (a file path).")

    _address: ListenAddress = PrivateAttr()
    _tls_address: ListenAddress | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> RtmpConfig:
        self._address = _listener(self, "listen")
        self._tls_address = _listener(self, "tls_listen") if self.tls_listen else None
        if self._tls_address is not None and not (self.tls_cert and self.tls_key):
            raise Problem("tls_listen", "needs rtmp.tls_cert and rtmp.tls_key (the RTMPS certificate and its key)")
        return self

    @property
    def address(self) -> ListenAddress:
        """``listen``, parsed when the configuration was validated."""
        return self._address

    @property
    def tls_address(self) -> ListenAddress | None:
        """``tls_listen`` parsed, or None without an RTMPS listener."""
        return self._tls_address


class HttpConfig(Section):
    """The HTTP listener: HLS, API, chat, web pages, /metrics."""

    listen: str = Field("0.0.0.0:8080", description=f"Address of the HTTP listener: {_LISTEN_HELP}.")
    public_url: str = Field("", description="Public base URL printed and used in links; empty: derived from http.listen.")
    trusted_proxies: tuple[str, ...] = Field(
        (), description="Reverse proxies (IP addresses or CIDRs) whose X-Forwarded-For names the client.")
    tls_cert: str = Field("", description="PEM certificate chain (a file path): with tls_key the listener speaks HTTPS.")
    tls_key: str = Field("", description="PEM private key of that certificate (a file path).")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1 << 30,
                                description="Largest request body (bytes) but cover uploads; more is a 413.")
    send_timeout: float = Field(60.0, ge=1, le=3600,
                                description="Seconds a client may take none of its answer before it is disconnected.")

    _address: ListenAddress = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> HttpConfig:
        self._address = _listener(self, "listen")
        for index, value in enumerate(self.trusted_proxies):
            try:
                parse_networks([value])
            except ValueError:
                raise Problem(f"trusted_proxies[{index}]", f"{value!r} is not an IP address or CIDR network") from None
        if bool(self.tls_cert) != bool(self.tls_key):
            unset = "tls_key" if self.tls_cert else "tls_cert"
            present = "tls_cert" if self.tls_cert else "tls_key"
            raise Problem(present, f"set http.{unset} too (HTTPS), or neither (HTTP)")
        return self

    @property
    def address(self) -> ListenAddress:
        """``listen``, parsed when the configuration was validated."""
        return self._address


class WebhookConfig(Section):
    """The publish webhook of ``auth.mode: webhook``."""

    url: str = Field("", description="URL that decides each publish (auth.mode webhook).")
    timeout: float = Field(5.0, ge=0.1, le=60, description="Seconds to wait for the webhook's answer before refusing.")


class AuthConfig(Section):
    """Who may publish."""

    mode: Literal["open", "keys", "webhook", "accounts"] = Field("open", description="Who may publish.")
    keys: Annotated[dict[str, StreamName], Secret(keys=True)] = Field(
        default_factory=dict, description="Secret stream key -> public stream name (mode keys).")
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)

    @model_validator(mode="after")
    def _check(self) -> AuthConfig:
        if self.mode == "webhook" and not self.webhook.url:
            raise Problem("webhook.url", "required when auth.mode is webhook", because=("mode",))
        if self.mode == "keys" and not self.keys:
            raise Problem("keys", "at least one key is required when auth.mode is keys", because=("mode",))
        if "" in self.keys:
            raise Problem("keys", "a key may not be empty")
        return self


class HlsConfig(Section):
    """HLS packaging of every live stream."""

    enabled: bool = Field(True, description="Package every live stream as HLS (false: an RTMP-only node).")
    format: Literal["fmp4", "mpegts"] = Field("fmp4", description="Container of the segments.")
    segment_duration: float = Field(2.0, ge=0.5, le=30, description="Target segment duration (seconds).")
    window: int = Field(6, ge=2, le=100, description="Segments listed in a live playlist.")
    reconnect_grace: float = Field(10.0, ge=0, le=3600,
                                   description="Seconds a dropped publisher may take to come back to the same playlists.")
    keep_after_end: float = Field(300.0, ge=0, le=7 * 86400,
                                  description="Seconds an ended stream's playlists stay readable.")
    low_latency: bool = Field(True, description="Low-Latency HLS (parts, blocking reload, preload hints).")
    part_duration: float = Field(0.25, ge=0.1, le=5, description="LL-HLS part duration (seconds).")
    url_signing_secret: Annotated[str, Secret()] = Field(
        "", description="HMAC-SHA256 key of the signed media URIs of non-public lives, shared with the cache in "
                        "front (deploy/nginx-cache.conf); empty: one generated into <data_dir>/hls_url_signing_secret.")
    url_signing_seconds: float = Field(
        30.0, ge=2, le=86400,
        description="Seconds a signed media URI of a non-public live stays valid (renewed at every playlist "
                    "reload; a viewer whose access is withdrawn loses the media within this time).")


Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
X264_PRESETS: tuple[str, ...] = typing.get_args(Preset)
_BITRATE = {"ge": 10_000, "le": 200_000_000}


class RungConfig(Section):
    """One rung of the transcoding ladder (H.264 video; audio is shared by all rungs)."""

    name: str = Field("", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Rendition name (not 'source').")
    height: int = Field(720, ge=64, le=4320, multiple_of=2,
                        description="Output short side in pixels (the height; a portrait source's width, "
                                    "so 720x1280 is 720p); the other side follows the source's aspect ratio.")
    video_bitrate: int = Field(2_800_000, **_BITRATE, description="Target video bitrate, bits per second.")
    maxrate: int = Field(3_000_000, **_BITRATE, description="VBV maximum rate, bits per second.")
    bufsize: int = Field(6_000_000, **_BITRATE, description="VBV buffer size, bits.")
    max_fps: float = Field(30.0, ge=1, le=240, description="Frame-rate cap; a faster source has frames dropped evenly.")
    preset: Preset = Field("veryfast", description="x264 preset.")

    @model_validator(mode="after")
    def _check(self) -> RungConfig:
        if self.maxrate < self.video_bitrate:
            raise Problem("maxrate", f"must be at least video_bitrate ({self.video_bitrate})")
        return self


DEFAULT_LADDER = (
    RungConfig(name="720p", height=720, video_bitrate=2_800_000, maxrate=3_000_000, bufsize=6_000_000),
    RungConfig(name="480p", height=480, video_bitrate=1_400_000, maxrate=1_500_000, bufsize=3_000_000),
    RungConfig(name="360p", height=360, video_bitrate=800_000, maxrate=850_000, bufsize=1_700_000),
)


class TranscodeConfig(Section):
    """The adaptive ladder encoded beside the untouched source rendition."""

    enabled: bool = Field(True, description="Encode the ladder (false: pass the source through only).")
    audio_bitrate: int = Field(128_000, ge=8_000, le=1_000_000,
                               description="AAC bitrate of the audio shared by all rungs, bits per second.")
    ladder: tuple[RungConfig, ...] = Field(DEFAULT_LADDER, description="The rungs; those bigger than the source (by short side) are left out.")
    max_queue_seconds: float = Field(2.0, ge=0.2, le=30,
                                     description="Most seconds of input the worker may have queued before it degrades.")

    @model_validator(mode="after")
    def _check(self) -> TranscodeConfig:
        seen = {"source"}
        for index, rung in enumerate(self.ladder):
            if rung.name in seen:
                raise Problem(f"ladder[{index}].name", f"{rung.name!r} is used twice (or is the reserved 'source')")
            seen.add(rung.name)
        return self


class HubConfig(Section):
    """The in-memory fan-out of each live stream."""

    reader_queue_units: int = Field(2048, ge=16, le=1_000_000,
                                    description="Units a reader may have queued before it skips to the next keyframe.")
    gop_cache_mb: int = Field(32, ge=1, le=4096, description="Largest GOP kept for new readers (MiB).")


class ViewersConfig(Section):
    """Viewer sessions."""

    idle_timeout: float = Field(15.0, ge=1, le=3600,
                                description="Seconds without a request after which a viewer session has left.")
    max_per_address: int = Field(
        8, ge=1, le=1_000_000,
        description="Most viewers (distinct user agents) one client address counts for in the viewer count and "
                    "discovery's ranking; more players from it are served but not counted.")


class AccountsConfig(Section):
    """User accounts and logins."""

    admin_handle: str = Field("admin", pattern=f"^{HANDLE_RE.pattern}$",
                              description="Handle of the admin created at start when no user has that handle.")
    admin_password: Annotated[str, Secret()] = Field(
        "", description="The admin's first password; empty: MEDIASRV_ADMIN_PASSWORD; both empty: no admin.")
    token_lifetime: float = Field(30 * 86400.0, ge=60, le=10 * 365 * 86400, description="Seconds a login token is valid.")
    open_registration: bool = Field(True, description="Anyone may create an account (false: only an admin may).")
    login_failures: int = Field(10, ge=1, le=1_000_000,
                                description="Failed password checks allowed per handle from one client address "
                                            "within login_window (logins and PATCH /api/me's current_password).")
    login_window: float = Field(60.0, ge=1, le=86400, description="The window (seconds) of login_failures.")
    # Issue 18 (abuse-accounts): the ceilings and registration limits below.
    login_ceiling: int = Field(100, ge=1, le=1_000_000,
                               description="Failed password checks allowed per client address (any handles) and per "
                                           "handle (any addresses) within login_window: high enough for many users "
                                           "behind one proxy.")
    registrations_per_address: int = Field(10, ge=1, le=1_000_000,
                                           description="Accounts one client address may register within "
                                                       "registration_window (admins are not limited).")
    registration_window: float = Field(3600.0, ge=1, le=30 * 86400,
                                       description="The window (seconds) of registrations_per_address.")
    registrations_per_minute: int = Field(60, ge=1, le=1_000_000,
                                          description="Accounts all clients together may register per minute.")
    follower_min_age: float = Field(86400.0, ge=0, le=365 * 86400,
                                    description="Seconds an account must exist before its follow counts toward "
                                                "live access (and it must have a verified email when "
                                                "email.enabled).")


class EmailConfig(Section):
    """Outgoing email (verification links), through an SMTP server; off by default."""

    enabled: bool = Field(False, description="Send a verification link to an email given at registration; "
                                             "followers then count toward live access only once verified.")
    host: str = Field("localhost", description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS (certificate verified).")
    ca_file: str = Field("", description="PEM bundle of certificates to trust for the SMTP server (a file path; "
                                         "a private server's CA); empty: the system's trust store.")
    username: str = Field("", description="SMTP login; empty: no login.")
    password: Annotated[str, Secret()] = Field("", description="SMTP password.")
    from_address: str = Field("mediasrv@localhost", pattern=r"^[^@\s<>]+@[^@\s<>]+$",
                              description="The From address of the mails sent.")
    link_lifetime: float = Field(86400.0, ge=60, le=30 * 86400,
                                 description="Seconds a verification link stays valid.")
    timeout: float = Field(10.0, ge=1, le=120, description="Seconds to wait for the SMTP server.")
    mails_per_hour: int = Field(3, ge=1, le=1000,
                                description="Verification mails one account may ask for per hour (PUT /api/me/email).")


class ImagesConfig(Section):
    """Decoding uploaded images (covers): bounded work per image and in total."""

    decode_workers: int = Field(2, ge=1, le=64, description="Images decoded at the same time.")
    decode_queue: int = Field(4, ge=0, le=1024,
                              description="Images that may wait for a worker; beyond that, 503 with Retry-After.")
    max_decode_mb: int = Field(128, ge=8, le=16384,
                               description="Largest decoded picture (MiB: width x height x channels x bytes per "
                                           "sample, from the image's header) accepted.")


class LiveAccessConfig(Section):
    """Who may go live in accounts mode."""

    min_followers: int = Field(1000, ge=0, le=1_000_000_000,
                               description="Followers a creator needs to go live (0: no rule).")


class ThumbnailsConfig(Section):
    """Thumbnails of live streams."""

    interval: float = Field(10.0, ge=1, le=3600, description="Seconds between thumbnails of a live stream.")
    width: int = Field(640, ge=64, le=1920, description="Width of a thumbnail in pixels.")


class UploadsConfig(Section):
    """Image uploads."""

    max_cover_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
                                 description="Largest cover image upload, bytes.")
    max_cover_pixels: int = Field(25_000_000, ge=4096, le=200_000_000,
                                  description="Largest decoded cover (width x height) accepted.")


class WebhooksConfig(Section):
    """Outgoing event webhooks (stream.started, stream.ended, broadcast.saved)."""

    urls: tuple[HttpUrl, ...] = Field((), description="http(s) URLs that receive the events.")
    secret: Annotated[str, Secret()] = Field("", description="HMAC-SHA256 key; empty: MEDIASRV_WEBHOOK_SECRET.")
    retries: int = Field(5, ge=0, le=20, description="Retries after a failed delivery.")
    backoff: float = Field(1.0, ge=0.01, le=3600, description="Seconds before the first retry, doubled for each next one.")
    timeout: float = Field(5.0, ge=0.1, le=60, description="Seconds to wait for a receiver's answer.")

    @model_validator(mode="after")
    def _check(self) -> WebhooksConfig:
        # The secret may come from the older, dedicated variable (mediasrv/server/webhooks.py).
        if self.urls and not (self.secret or os.environ.get("MEDIASRV_WEBHOOK_SECRET")):
            raise Problem("secret", "required when webhooks.urls is set (or set MEDIASRV_WEBHOOK_SECRET)",
                          because=("urls",))
        return self


class RecordingConfig(Section):
    """Save or discard: every broadcast's source rendition is recorded to disk."""

    enabled: bool = Field(True, description="Record every broadcast.")
    dir: str = Field("", description="Directory of the recordings; empty: <data_dir>/recordings.")
    decide_within: float = Field(86400.0, ge=0, le=10 * 365 * 86400,
                                 description="Seconds after a broadcast ends before an undecided recording "
                                             "follows the creator's default.")
    min_free_bytes: int = Field(128 * 1024 * 1024, ge=0, le=1 << 50,
                                description="Free bytes a recording leaves on its disk (0: until full).")
    admin_token: Annotated[str, Secret()] = Field(
        "", description="Bearer token that may decide about any recording; empty: none.")


#: Who may watch a live (docs/security.md, "Who may watch").
Visibility = Literal["public", "followers", "unlisted", "private"]
VISIBILITIES: tuple[str, ...] = typing.get_args(Visibility)


class LiveConfig(Section):
    """Backstage and ending a live from the studio (docs/api.md#backstage-and-ending-a-live)."""

    end_hold_seconds: float = Field(
        60.0, ge=0, le=86400,
        description="After a creator ends their live (POST /api/me/live/end), seconds during which a new "
                    "publish of that stream (the same key, RTMP or WHIP) is refused rather than silently "
                    "restarting the live; 0: none.")
    grant_seconds: float = Field(
        3600.0, ge=10, le=7 * 86400,
        description="Seconds a signed playback URL of a private (backstage) live stays valid, unless revoked "
                    "sooner (a moderator removed, an operator's role lowered).")
    playback_secret: Annotated[str, Secret()] = Field(
        "", description="HMAC key of signed playback URLs; empty: a random key at each start (the URLs "
                        "stop working at a restart; give every node of a cluster the same key).")
    visibility_default: Visibility = Field(
        "public", description="Who may watch a creator's live until they choose (public, followers, unlisted, "
                              "private); must be one of visibility_allowed.")
    visibility_allowed: list[Visibility] = Field(
        ["public", "followers", "unlisted", "private"], min_length=1,
        description="The visibilities creators may choose; a creator's saved choice no longer allowed falls "
                    "back to visibility_default.")

    def effective_visibility(self, chosen: str) -> str:
        """A creator's choice as it applies: the site's default when none was made or the
        choice is no longer allowed."""
        return chosen if chosen in self.visibility_allowed else self.visibility_default

    @model_validator(mode="after")
    def _check_visibility(self) -> LiveConfig:
        if self.visibility_default not in self.visibility_allowed:
            raise Problem("visibility_default", f"must be one of visibility_allowed ({self.visibility_allowed})")
        return self


class ChatConfig(Section):
    """Chat beside every stream (``/live/NAME/chat``): limits and flow control."""

    history: int = Field(50, ge=0, le=1000, description="Messages a joining client receives as history.")
    max_chars: int = Field(500, ge=1, le=10_000, description="Longest message in characters.")
    rate: int = Field(3, ge=1, le=1000, description="Per-user rate limit: rate messages per `per` seconds.")
    per: float = Field(2.0, ge=0.1, le=3600, description="Seconds of the rate limit window.")
    burst: int = Field(3, ge=1, le=1000, description="Messages a user may send at once before the rate applies.")
    send_buffer: int = Field(256, ge=1, le=100_000,
                             description="Messages queued per connection; a client this far behind is disconnected.")
    flush_interval: float = Field(0.07, ge=0, le=1,
                                  description="In a big room: seconds frames for one connection may gather.")
    batch_above: int = Field(1000, ge=0, le=10_000_000,
                             description="A fan-out to this many connections or more is a big room.")
    heartbeat: float = Field(20.0, ge=1, le=3600, description="Seconds between WebSocket pings.")
    banned_words: tuple[str, ...] = Field((), description="Words and phrases refused in every chat.")


class ModerationConfig(Section):
    """Chat moderation by creators and their moderators, and the report queue."""

    max_banned_words: int = Field(500, ge=0, le=100_000, description="Words in one creator's own banned-word list.")
    max_word_chars: int = Field(64, ge=1, le=1000, description="Longest banned word or phrase, in characters.")
    max_reason_chars: int = Field(500, ge=1, le=10_000,
                                  description="Longest ban reason, report reason or resolution, in characters.")
    max_timeout_minutes: int = Field(7 * 24 * 60, ge=1, le=10 * 365 * 24 * 60,
                                     description="Longest chat timeout, in minutes.")
    reports_per_hour: int = Field(10, ge=1, le=100_000, description="Reports one user may file per hour.")


class GiftConfig(Section):
    """One gift of the catalogue."""

    id: str = Field("", pattern=f"^{GIFT_ID_RE.pattern}$", description="Stable identifier clients send (gift_id).")
    name: str = Field("", min_length=1, max_length=64, description="Name shown to viewers.")
    price: int = Field(1, ge=1, le=1_000_000_000, description="Price in whole coins.")
    image: str = Field("", pattern=r"^(https?://\S+|/\S*)?$",
                       description="URL of its picture (http(s) or a path on this server); empty: none.")


DEFAULT_CATALOGUE = (
    GiftConfig(id="heart", name="Heart", price=1),
    GiftConfig(id="rose", name="Rose", price=10),
    GiftConfig(id="rocket", name="Rocket", price=100),
    GiftConfig(id="castle", name="Castle", price=1000),
)


class GiftsConfig(Section):
    """Virtual gifts paid with coins (see docs/api.md, Gifts)."""

    catalogue: tuple[GiftConfig, ...] = Field(DEFAULT_CATALOGUE, description="The gifts viewers can send.")
    platform_share: float = Field(0.5, ge=0, le=1, description="Fraction of every gift kept by the platform.")
    coin_value: float = Field(0.01, ge=0.000001, le=1_000_000, description="Money value of one coin, in currency.")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the money values.")
    max_credit: int = Field(10_000_000, ge=1, le=1_000_000_000_000,
                            description="Largest credit of coins to a wallet in one admin request.")
    leaderboard_size: int = Field(10, ge=1, le=1000, description="Senders listed on a stream's top-gifters leaderboard.")

    @model_validator(mode="after")
    def _check(self) -> GiftsConfig:
        seen: set[str] = set()
        for index, gift in enumerate(self.catalogue):
            if gift.id in seen:
                raise Problem(f"catalogue[{index}].id", f"{gift.id!r} is used twice")
            seen.add(gift.id)
        return self


class AnalyticsConfig(Section):
    """The creator's live analytics (chat activity, gifts, new followers)."""

    active_window: float = Field(300.0, ge=10, le=86400,
                                 description="A chatter is active if they wrote within this many seconds.")
    followers_refresh: float = Field(5.0, ge=0.5, le=3600,
                                     description="Seconds between refreshes of a live broadcast's new-follower count.")


class ClusterConfig(Section):
    """Several nodes over one Redis (docs/cluster.md). Without ``redis_url`` everything
    stays in this process."""

    redis_url: str = Field("", pattern=r"^((rediss?|unix)://\S+)?$",
                           description="redis://HOST:PORT/DB (or rediss://, unix://); empty: a single node.")
    node_id: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,64}$",
                         description="This node's name in the cluster; empty: HOSTNAME-PID.")
    advertise_url: str = Field("", pattern=r"^(https?://[^\s/?#]+/?)?$",
                               description="Base URL other nodes fetch this node's streams from; empty: derived.")
    ingest: bool = Field(True, description="false: a pure edge (no RTMP listener, takes no publishers).")
    heartbeat: float = Field(2.0, ge=0.1, le=60, description="Seconds between refreshes of this node's keys.")
    directory_ttl: float = Field(10.0, ge=0.5, le=3600,
                                 description="Seconds a key lives without a refresh (at least twice heartbeat).")
    key_prefix: str = Field("mediasrv", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                            description="Prefix of every Redis key and channel.")
    edge_cache_mb: int = Field(64, ge=1, le=65536,
                               description="Memory for what is fetched from other nodes (MiB).")

    @model_validator(mode="after")
    def _check(self) -> ClusterConfig:
        if not self.ingest and not self.redis_url:
            raise Problem("ingest", "false (a pure edge) needs cluster.redis_url: alone it has nothing to serve")
        if self.directory_ttl < 2 * self.heartbeat:
            # One lost heartbeat must not drop a live node's streams from the directory.
            raise Problem("directory_ttl", f"{self.directory_ttl:g} must be at least twice "
                                           f"cluster.heartbeat ({self.heartbeat:g})", because=("heartbeat",))
        return self


_ICE_URL = r"^(stun|stuns|turn|turns):[^\s<>\"]+$"
IceUrl = Annotated[str, Field(pattern=_ICE_URL)]


class IceServerConfig(Section):
    """One STUN or TURN server of ``webrtc.ice_servers`` (RFC 9725 §4.6)."""

    urls: tuple[IceUrl, ...] = Field((), min_length=1, max_length=8,
                                     description="stun:HOST:PORT or turn:HOST:PORT?transport=udp URLs of one server.")
    username: str = Field("", max_length=256, pattern=r'^[^\s"\\]*$', description="TURN username; empty for STUN.")
    credential: Annotated[str, Secret()] = Field(
        "", max_length=256, pattern=r'^[^\s"\\]*$', description="TURN password (credential-type password).")
    gather: bool = Field(False, description="The server also gathers its own candidates through it (false: only "
                                            "told to clients).")

    @property
    def has_credentials(self) -> bool:
        """Whether telling this server means telling a secret (a TURN password)."""
        return bool(self.credential)


class WebrtcConfig(Section):
    """WHIP ingest (docs/whip.md): WebRTC publishers over HTTP POST /whip."""

    enabled: bool = Field(True, description="Take WHIP publishers on the HTTP listener (POST /whip).")
    max_sessions: int = Field(16, ge=1, le=10_000,
                              description="Most WHIP sessions at once (setting up or live); more get 503.")
    max_sessions_per_address: int = Field(
        4, ge=1, le=10_000,
        description="Most WHIP sessions at once (setting up or live) from one client address; more get 429, "
                    "so one address cannot take every session.")
    setup_timeout: float = Field(15.0, ge=0.5, le=600,
                                 description="Seconds a session may take from its offer to its first media frame "
                                             "before it is reaped.")
    idle_timeout: float = Field(30.0, ge=0.1, le=86400,
                                description="Seconds a live session may go without a media frame (audio or video) "
                                            "before it is closed and its stream orphaned, like a dropped RTMP "
                                            "publisher's (rtmp.idle_timeout).")
    ice_servers: tuple[IceServerConfig, ...] = Field(
        (), max_length=16, description="STUN/TURN servers given to clients in Link headers.")
    public_address: str = Field("", description="An IPv4 address the server is reached at (1:1 NAT, containers): "
                                                "the answer gets candidates at it with the same ports. Empty: none.")
    udp_ports: str = Field("", pattern=r"^(\d{1,5}-\d{1,5})?$",
                           description="FIRST-LAST: the UDP ports WebRTC uses, which must be the kernel's ephemeral "
                                       "range (net.ipv4.ip_local_port_range); checked at start. Empty: not checked.")
    video_bitrate: int = Field(2_500_000, **_BITRATE, description="H.264 bitrate (bits/s) the WHIP video is "
                                                                  "re-encoded at (the source rendition).")
    audio_bitrate: int = Field(128_000, ge=8_000, le=1_000_000, description="AAC bitrate (bits/s) of the WHIP audio.")
    preset: Preset = Field("veryfast", description="x264 preset of the WHIP re-encode.")

    _ports: tuple[int, int] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> WebrtcConfig:
        if self.public_address:
            try:
                address = ipaddress.ip_address(self.public_address)
            except ValueError:
                raise Problem("public_address", f"{self.public_address!r} is not an IP address") from None
            if address.version != 4:
                raise Problem("public_address", "an IPv4 address (the server gathers IPv4 candidates)")
        if self.udp_ports:
            first, last = (int(part) for part in self.udp_ports.split("-"))
            if not 1024 <= first <= last <= 65535:
                raise Problem("udp_ports", f"{self.udp_ports!r}: FIRST-LAST with 1024 <= FIRST <= LAST <= 65535")
            self._ports = (first, last)
        return self

    @property
    def port_range(self) -> tuple[int, int] | None:
        """``udp_ports`` parsed, or None when not set."""
        return self._ports


class LogConfig(Section):
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Least severe level logged.")


class Config(BaseSettings):
    """The mediasrv configuration file (config/mediasrv.yaml documents every key).

    ``Config()`` is the defaults and ``Config(**sections)`` the defaults with those
    sections: it reads nothing else. ``mediasrv.config.load_config`` layers the sources
    (defaults < YAML file < ``MEDIASRV_SECTION__KEY`` variables < ``--set``); the
    ``env_*`` settings below are what its environment source follows."""

    model_config = SettingsConfigDict(
        env_prefix="MEDIASRV_",
        env_nested_delimiter="__",
        case_sensitive=False,
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        coerce_numbers_to_str=True,
    )

    data_dir: str = Field("./data", description="Where recordings, the database and other state are kept.")
    rtmp: RtmpConfig = Field(default_factory=RtmpConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    hls: HlsConfig = Field(default_factory=HlsConfig)
    transcode: TranscodeConfig = Field(default_factory=TranscodeConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    viewers: ViewersConfig = Field(default_factory=ViewersConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    live_access: LiveAccessConfig = Field(default_factory=LiveAccessConfig)
    thumbnails: ThumbnailsConfig = Field(default_factory=ThumbnailsConfig)
    uploads: UploadsConfig = Field(default_factory=UploadsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)
    gifts: GiftsConfig = Field(default_factory=GiftsConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    webrtc: WebrtcConfig = Field(default_factory=WebrtcConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """Only what is passed: the environment and the file are layered by ``load_config``,
        which must know where each value came from to name it in an error."""
        return (init_settings,)

    @model_validator(mode="after")
    def _check_hls(self) -> Config:
        # hls.enabled: false leaves nothing for what only consumes HLS: the transcoder's
        # rungs are HLS renditions, and cluster edges fetch a node's streams as HLS.
        if self.hls.enabled:
            return self
        if self.transcode.enabled:
            raise Problem("hls.enabled", "false needs transcode.enabled: false (the rungs are HLS renditions)",
                          because=("transcode.enabled",))
        if self.cluster.redis_url:
            raise Problem("hls.enabled", "false needs cluster.redis_url empty (other nodes fetch streams as HLS)",
                          because=("cluster.redis_url",))
        return self

    @property
    def data_path(self) -> Path:
        """``data_dir`` as a path."""
        return Path(self.data_dir)


def replace(section: Section | Config, **changes: object) -> typing.Any:
    """A copy of ``section`` (any config model, ``Config`` included) with ``changes``,
    validated like a loaded one: what ``dataclasses.replace`` was for the old dataclasses.

    (``model_copy(update=...)`` does not validate, so it would skip the bounds and leave
    the parsed listen addresses stale.) Raises pydantic's ValidationError."""
    return type(section).model_validate({**dict(section), **changes})

