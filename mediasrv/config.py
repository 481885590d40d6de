"""Typed configuration: YAML file + ``--set key=value`` overrides, validated at start.

Every key has a default here and is documented in ``config/mediasrv.yaml``. Errors name
the dotted key and what is wrong; the command line turns them into exit status 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration file or value is invalid. The message names the key."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str, key: str) -> ListenAddress:
    """Parse ``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (all interfaces)."""
    text = str(value).strip()
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\[\]\s]*):(\d{1,5})", text)
    if not match:
        raise ConfigError(f"{key}: expected HOST:PORT (e.g. 0.0.0.0:1935), got {value!r}")
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{key}: port {port} is out of range 0-65535")
    return ListenAddress(host, port)


@dataclass(frozen=True, slots=True)
class RtmpConfig:
    listen: str = "0.0.0.0:1935"
    #: Application name in the URL (rtmp://HOST/APP/KEY).
    app: str = "live"
    #: Largest RTMP message accepted (bytes); bounds memory per connection.
    max_message_size: int = 8 * 1024 * 1024
    max_connections: int = 1000
    #: Seconds to complete the handshake and the connect/publish exchange.
    handshake_timeout: float = 10.0
    #: Seconds without a byte from a peer before it is closed.
    idle_timeout: float = 30.0
    #: Our outgoing chunk size.
    chunk_size: int = 4096
    #: Units a playback (RTMP play) reader may have queued before it skips to a keyframe.
    play_queue_units: int = 1024
    #: Milliseconds a publisher's bytes may gather before they are read (0: read at once).
    read_batch_ms: float = 30.0
    #: A second listener speaking RTMPS (RTMP in TLS), e.g. 0.0.0.0:1936; empty: none.
    tls_listen: str = ""
    #: PEM certificate chain and private key of the RTMPS listener.
    tls_cert: str = ""
    tls_key: str = ""

    @property
    def address(self) -> ListenAddress:
        return parse_listen(self.listen, "rtmp.listen")

    @property
    def tls_address(self) -> ListenAddress | None:
        return parse_listen(self.tls_listen, "rtmp.tls_listen") if self.tls_listen else None


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = "0.0.0.0:8080"
    #: Public base URL printed and used in links; empty: derived from http.listen.
    public_url: str = ""
    #: Reverse proxies (CIDRs) whose X-Forwarded-For names the client (empty: none).
    trusted_proxies: tuple[str, ...] = ()
    #: PEM certificate chain and private key: when both are set the listener speaks HTTPS.
    tls_cert: str = ""
    tls_key: str = ""
    #: Largest request body (bytes) of any endpoint but the cover upload
    #: (``uploads.max_cover_bytes``); more is a 413.
    max_body_bytes: int = 1024 * 1024
    #: Seconds a client may take none of its answer before its connection is closed.
    send_timeout: float = 60.0

    @property
    def address(self) -> ListenAddress:
        return parse_listen(self.listen, "http.listen")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str = ""
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AuthConfig:
    mode: Literal["open", "keys", "webhook", "accounts"] = "open"
    #: secret stream key -> public stream name (mode ``keys``).
    keys: dict[str, str] = field(default_factory=dict)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)


@dataclass(frozen=True, slots=True)
class HlsConfig:
    #: Package every live stream as HLS. False: an RTMP-only ingest/relay node (what
    #: nginx-rtmp's ``live on`` does): publishers in, RTMP players out, no muxing.
    enabled: bool = True
    format: Literal["fmp4", "mpegts"] = "fmp4"
    segment_duration: float = 2.0
    window: int = 6
    reconnect_grace: float = 10.0
    keep_after_end: float = 300.0
    low_latency: bool = True
    part_duration: float = 0.25


@dataclass(frozen=True, slots=True)
class RungConfig:
    """One rung of the transcoding ladder (H.264 video; audio is shared by all rungs)."""

    name: str = ""
    #: Output height in pixels; the width follows the source's aspect ratio (even).
    height: int = 720
    #: Target video bitrate, bits per second.
    video_bitrate: int = 2_800_000
    #: VBV maximum rate and buffer size, bits per second / bits.
    maxrate: int = 3_000_000
    bufsize: int = 6_000_000
    #: Frame-rate cap; a faster source has frames dropped evenly.
    max_fps: float = 30.0
    #: x264 preset (ultrafast … veryslow).
    preset: str = "veryfast"


def _default_ladder() -> tuple[RungConfig, ...]:
    return (
        RungConfig("720p", 720, 2_800_000, 3_000_000, 6_000_000, 30.0, "veryfast"),
        RungConfig("480p", 480, 1_400_000, 1_500_000, 3_000_000, 30.0, "veryfast"),
        RungConfig("360p", 360, 800_000, 850_000, 1_700_000, 30.0, "veryfast"),
    )


@dataclass(frozen=True, slots=True)
class TranscodeConfig:
    #: false: pass the source through only (no ladder).
    enabled: bool = True
    #: AAC bitrate of the audio shared by all rungs, bits per second.
    audio_bitrate: int = 128_000
    ladder: tuple[RungConfig, ...] = field(default_factory=_default_ladder)
    #: Most seconds of input the worker may have queued before it degrades.
    max_queue_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class HubConfig:
    #: Units a reader may have queued before it skips to the next keyframe.
    reader_queue_units: int = 2048
    #: Largest GOP kept for new readers (MiB).
    gop_cache_mb: int = 32


@dataclass(frozen=True, slots=True)
class ViewersConfig:
    #: Seconds without a request after which a viewer session has left.
    idle_timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    #: Handle of the admin created at start when no user has that handle.
    admin_handle: str = "admin"
    #: The admin's first password; empty: MEDIASRV_ADMIN_PASSWORD; both empty: no admin.
    admin_password: str = ""
    #: Seconds a login token is valid.
    token_lifetime: float = 30 * 86400.0
    #: Anyone may create a viewer or creator account (false: only an admin may).
    open_registration: bool = True
    #: Failed logins allowed per client address and per handle within ``login_window``
    #: seconds; more are answered 429 with Retry-After.
    login_failures: int = 10
    login_window: float = 60.0


@dataclass(frozen=True, slots=True)
class LiveAccessConfig:
    #: Followers a creator needs to go live (0: no rule). Admins can grant/revoke by hand.
    min_followers: int = 1000


@dataclass(frozen=True, slots=True)
class ThumbnailsConfig:
    #: Seconds between thumbnails of a live stream (taken at a keyframe).
    interval: float = 10.0
    #: Width of a thumbnail in pixels (the height follows the aspect ratio).
    width: int = 640


@dataclass(frozen=True, slots=True)
class UploadsConfig:
    #: Largest cover image upload, bytes.
    max_cover_bytes: int = 5 * 1024 * 1024
    #: Largest decoded cover (width x height) accepted; guards against image bombs.
    max_cover_pixels: int = 25_000_000


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Outgoing event webhooks (stream.started, stream.ended, broadcast.saved)."""

    urls: tuple[str, ...] = ()
    #: HMAC-SHA256 key; empty: MEDIASRV_WEBHOOK_SECRET.
    secret: str = ""
    #: Retries after a failed delivery, with exponential backoff from ``backoff`` seconds.
    retries: int = 5
    backoff: float = 1.0
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class RecordingConfig:
    """Save or discard: every broadcast's source rendition is recorded to disk."""

    enabled: bool = True
    #: Directory of the recordings; empty: ``<data_dir>/recordings``.
    dir: str = ""
    #: Seconds after a broadcast ends before an undecided recording follows the creator's
    #: default (save or discard).
    decide_within: float = 86400.0
    #: A recording fails (the stream goes on) rather than leave less free space than this.
    min_free_bytes: int = 128 * 1024 * 1024
    #: Bearer token that may decide about any recording (until accounts); empty: none.
    admin_token: str = ""


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """Chat beside every stream (``/live/NAME/chat``): limits and flow control."""

    #: Messages a joining client receives as the room's recent history.
    history: int = 50
    #: Longest message in characters (after normalisation).
    max_chars: int = 500
    #: Per-user rate limit: ``rate`` messages per ``per`` seconds, bursts up to ``burst``.
    rate: int = 3
    per: float = 2.0
    burst: int = 3
    #: Messages queued per connection; a client that falls this far behind is disconnected.
    send_buffer: int = 256
    #: In a big, busy room: seconds frames for one connection may gather before they are
    #: written together (0: always at the end of the event loop's turn).
    flush_interval: float = 0.07
    #: A fan-out to this many connections or more makes the next frames gather for
    #: ``flush_interval`` (a big room); smaller ones are written at once.
    batch_above: int = 1000
    #: Seconds between WebSocket pings; a peer that does not answer is disconnected.
    heartbeat: float = 20.0
    #: Words and phrases refused in every chat (case- and accent-insensitive).
    banned_words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModerationConfig:
    """Chat moderation by creators and their moderators, and the report queue."""

    #: Words and phrases in one creator's own banned-word list (on top of chat.banned_words).
    max_banned_words: int = 500
    #: Longest banned word or phrase, in characters.
    max_word_chars: int = 64
    #: Longest ban reason, report reason or report resolution, in characters.
    max_reason_chars: int = 500
    #: Longest chat timeout, in minutes (default one week).
    max_timeout_minutes: int = 7 * 24 * 60
    #: Reports one user may file per hour.
    reports_per_hour: int = 10


@dataclass(frozen=True, slots=True)
class GiftConfig:
    """One gift of the catalogue."""

    #: Stable identifier clients send (``gift_id``): 1-32 of a-z, 0-9, '_', '-'.
    id: str = ""
    name: str = ""
    #: Price in whole coins.
    price: int = 1
    #: URL of its picture (absolute http(s) or a path on this server); '' = none.
    image: str = ""


def _default_catalogue() -> tuple[GiftConfig, ...]:
    return (
        GiftConfig("heart", "Heart", 1, ""),
        GiftConfig("rose", "Rose", 10, ""),
        GiftConfig("rocket", "Rocket", 100, ""),
        GiftConfig("castle", "Castle", 1000, ""),
    )


@dataclass(frozen=True, slots=True)
class GiftsConfig:
    """Virtual gifts paid with coins (see docs/api.md, Gifts)."""

    catalogue: tuple[GiftConfig, ...] = field(default_factory=_default_catalogue)
    #: Fraction of every gift kept by the platform (the creator gets the rest, rounded down).
    platform_share: float = 0.5
    #: Money value of one coin, in ``currency``.
    coin_value: float = 0.01
    currency: str = "USD"
    #: Largest credit of coins to a wallet in one admin request.
    max_credit: int = 10_000_000
    #: Senders listed on a stream's top-gifters leaderboard.
    leaderboard_size: int = 10


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """The creator's live analytics (chat activity, gifts, new followers)."""

    #: A chatter is active if they wrote within this many seconds.
    active_window: float = 300.0
    #: Seconds between refreshes of a live broadcast's new-follower count.
    followers_refresh: float = 5.0


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Several nodes over one Redis (docs/cluster.md). Without ``redis_url`` everything
    stays in this process."""

    #: ``redis://HOST:PORT/DB`` (or ``rediss://``, ``unix://``); empty: a single node.
    redis_url: str = ""
    #: This node's name in the cluster; empty: HOSTNAME-PID.
    node_id: str = ""
    #: Base URL the other nodes fetch this node's streams from; empty: http.public_url,
    #: else derived from http.listen.
    advertise_url: str = ""
    #: false: a pure edge (no RTMP listener, takes no publishers).
    ingest: bool = True
    #: Seconds between refreshes of this node's keys (directory, liveness, viewers).
    heartbeat: float = 2.0
    #: Seconds a key lives without a refresh: a dead node's streams leave the directory
    #: within this time.
    directory_ttl: float = 10.0
    #: Prefix of every Redis key and channel (several clusters can share one Redis).
    key_prefix: str = "mediasrv"
    #: Memory for the parts, segments and init segments fetched from other nodes (MiB).
    edge_cache_mb: int = 64


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: str = "./data"
    rtmp: RtmpConfig = field(default_factory=RtmpConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    hls: HlsConfig = field(default_factory=HlsConfig)
    transcode: TranscodeConfig = field(default_factory=TranscodeConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    viewers: ViewersConfig = field(default_factory=ViewersConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    live_access: LiveAccessConfig = field(default_factory=LiveAccessConfig)
    thumbnails: ThumbnailsConfig = field(default_factory=ThumbnailsConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)
    gifts: GiftsConfig = field(default_factory=GiftsConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


# Bounds checked after typing: key -> (minimum, maximum).
_RANGES: dict[str, tuple[float, float]] = {
    "rtmp.max_message_size": (1024, 1 << 30),
    "rtmp.max_connections": (1, 1_000_000),
    "rtmp.handshake_timeout": (0.1, 3600),
    "rtmp.idle_timeout": (0.1, 86400),
    "rtmp.chunk_size": (128, 0x7FFFFFFF),
    "rtmp.play_queue_units": (16, 1_000_000),
    "rtmp.read_batch_ms": (0, 200),
    "http.max_body_bytes": (1024, 1 << 30),
    "http.send_timeout": (1, 3600),
    "accounts.login_failures": (1, 1_000_000),
    "accounts.login_window": (1, 86400),
    "auth.webhook.timeout": (0.1, 60),
    "hls.segment_duration": (0.5, 30),
    "hls.window": (2, 100),
    "hls.reconnect_grace": (0, 3600),
    "hls.keep_after_end": (0, 7 * 86400),
    "hls.part_duration": (0.1, 5),
    "hub.reader_queue_units": (16, 1_000_000),
    "viewers.idle_timeout": (1, 3600),
    "transcode.audio_bitrate": (8_000, 1_000_000),
    "transcode.max_queue_seconds": (0.2, 30),
    "hub.gop_cache_mb": (1, 4096),
    "recording.decide_within": (0, 10 * 365 * 86400),
    "recording.min_free_bytes": (0, 1 << 50),
    "accounts.token_lifetime": (60, 10 * 365 * 86400),
    "live_access.min_followers": (0, 1_000_000_000),
    "thumbnails.interval": (1, 3600),
    "thumbnails.width": (64, 1920),
    "uploads.max_cover_bytes": (1024, 100 * 1024 * 1024),
    "uploads.max_cover_pixels": (4096, 200_000_000),
    "webhooks.retries": (0, 20),
    "webhooks.backoff": (0.01, 3600),
    "webhooks.timeout": (0.1, 60),
    "chat.history": (0, 1000),
    "chat.max_chars": (1, 10_000),
    "chat.rate": (1, 1000),
    "chat.per": (0.1, 3600),
    "chat.burst": (1, 1000),
    "chat.send_buffer": (1, 100_000),
    "chat.heartbeat": (1, 3600),
    "moderation.max_banned_words": (0, 100_000),
    "moderation.max_word_chars": (1, 1000),
    "moderation.max_reason_chars": (1, 10_000),
    "moderation.max_timeout_minutes": (1, 10 * 365 * 24 * 60),
    "moderation.reports_per_hour": (1, 100_000),
    "chat.flush_interval": (0, 1),
    "chat.batch_above": (0, 10_000_000),
    "gifts.platform_share": (0, 1),
    "gifts.coin_value": (0.000001, 1_000_000),
    "gifts.max_credit": (1, 1_000_000_000_000),
    "gifts.leaderboard_size": (1, 1000),
    "analytics.active_window": (10, 86400),
    "analytics.followers_refresh": (0.5, 3600),
    "cluster.heartbeat": (0.1, 60),
    "cluster.directory_ttl": (0.5, 3600),
    "cluster.edge_cache_mb": (1, 65536),
}


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read ``path`` (YAML; none: embedded defaults), apply ``KEY=VALUE`` overrides, validate."""
    data: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        except ValueError as exc:  # PyYAML's int() of an over-long number (found by tests/fuzz)
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        except RecursionError:  # found by tests/fuzz: PyYAML recurses per nesting level
            raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        data = loaded
    for item in overrides:
        apply_override(data, item)
    return build_config(data)


def apply_override(data: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` to the raw mapping (``auth.keys.SECRET=alice`` adds
    an entry to a map). The value is kept as text; typing happens in ``build_config``."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(f"--set {item!r}: empty part in key {key!r}")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[:depth + 1])}: is a value, not a section")
        node = child
    node[parts[-1]] = _OverrideText(value)


class _OverrideText(str):
    """A value that came from the command line as text; typed by the target field."""


def build_config(data: dict) -> Config:
    config = _build(Config, data, "")
    for key, (low, high) in _RANGES.items():
        value = _get(config, key)
        if not low <= value <= high:
            raise ConfigError(f"{key}: {value} is out of range {low:g}-{high:g}")
    config.rtmp.address  # noqa: B018 - validates
    config.http.address  # noqa: B018
    _check_tls(config)
    _check_trusted_proxies(config.http.trusted_proxies)
    if config.auth.mode == "webhook" and not config.auth.webhook.url:
        raise ConfigError("auth.webhook.url: required when auth.mode is webhook")
    if config.auth.mode == "keys" and not config.auth.keys:
        raise ConfigError("auth.keys: at least one key is required when auth.mode is keys")
    for secret, name in config.auth.keys.items():
        if not STREAM_NAME_RE.fullmatch(name):
            raise ConfigError(f"auth.keys.<key>: {name!r} is not a valid stream name ({STREAM_NAME_RULE})")
        if not secret:
            raise ConfigError("auth.keys: a key may not be empty")
    _check_ladder(config.transcode.ladder)
    _check_accounts(config)
    _check_gifts(config.gifts)
    _check_cluster(config.cluster)
    _check_hls(config)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", config.rtmp.app):
        raise ConfigError(f"rtmp.app: {config.rtmp.app!r} must be 1-64 letters, digits, '_' or '-'")
    return config


def _check_tls(config: Config) -> None:
    """Certificate and key come together; the files are loaded when the listener starts
    (``mediasrv.tls``), so a bad file is still a ConfigError naming the key."""
    rtmp, http = config.rtmp, config.http
    if rtmp.tls_address is not None and not (rtmp.tls_cert and rtmp.tls_key):
        raise ConfigError("rtmp.tls_cert, rtmp.tls_key: required when rtmp.tls_listen is set")
    if bool(http.tls_cert) != bool(http.tls_key):
        raise ConfigError("http.tls_cert, http.tls_key: set both (HTTPS) or neither (HTTP)")


def _check_trusted_proxies(values: tuple[str, ...]) -> None:
    from mediasrv.httpkit.forwarded import parse_networks

    try:
        parse_networks(values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


HANDLE_RULE = "3-32 characters: lowercase letters, digits, '_' or '-', starting with a letter or digit"
HANDLE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")


def _check_accounts(config: Config) -> None:
    if not HANDLE_RE.fullmatch(config.accounts.admin_handle):
        raise ConfigError(f"accounts.admin_handle: {config.accounts.admin_handle!r} is not a valid handle ({HANDLE_RULE})")
    for index, url in enumerate(config.webhooks.urls):
        if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url):
            raise ConfigError(f"webhooks.urls[{index}]: {url!r} is not an http:// or https:// URL")
    if config.webhooks.urls and not (config.webhooks.secret or os.environ.get("MEDIASRV_WEBHOOK_SECRET")):
        raise ConfigError("webhooks.secret: required when webhooks.urls is set (or set MEDIASRV_WEBHOOK_SECRET)")


def _check_cluster(cluster: ClusterConfig) -> None:
    if cluster.redis_url and not re.fullmatch(r"(rediss?|unix)://[^\s]+", cluster.redis_url):
        raise ConfigError(f"cluster.redis_url: {cluster.redis_url!r} is not a redis://, rediss:// or unix:// URL")
    if cluster.node_id and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", cluster.node_id):
        raise ConfigError(f"cluster.node_id: {cluster.node_id!r} must be 1-64 letters, digits, '_', '.' or '-'")
    if cluster.advertise_url and not re.fullmatch(r"https?://[^\s/?#]+/?", cluster.advertise_url):
        raise ConfigError(f"cluster.advertise_url: {cluster.advertise_url!r} is not a base URL like http://HOST:8080")
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", cluster.key_prefix):
        raise ConfigError(f"cluster.key_prefix: {cluster.key_prefix!r} must be 1-64 letters, digits, '_', '.', ':' or '-'")
    if not cluster.ingest and not cluster.redis_url:
        raise ConfigError("cluster.ingest: false (a pure edge) needs cluster.redis_url: alone it has nothing to serve")
    if cluster.directory_ttl < 2 * cluster.heartbeat:
        # One lost heartbeat must not drop a live node's streams from the directory.
        raise ConfigError(f"cluster.directory_ttl: {cluster.directory_ttl:g} must be at least twice "
                          f"cluster.heartbeat ({cluster.heartbeat:g})")


def _check_hls(config: Config) -> None:
    """``hls.enabled: false`` leaves nothing for what only consumes HLS: the transcoder's
    rungs are HLS renditions, and cluster edges fetch a node's streams as HLS."""
    if config.hls.enabled:
        return
    if config.transcode.enabled:
        raise ConfigError("hls.enabled: false needs transcode.enabled: false (the rungs are HLS renditions)")
    if config.cluster.redis_url:
        raise ConfigError("hls.enabled: false needs cluster.redis_url empty (other nodes fetch streams as HLS)")


GIFT_ID_RE = re.compile(r"[a-z0-9_-]{1,32}")


def _check_gifts(gifts: GiftsConfig) -> None:
    if not re.fullmatch(r"[A-Z]{3}", gifts.currency):
        raise ConfigError(f"gifts.currency: {gifts.currency!r} is not a three-letter ISO 4217 code (e.g. USD)")
    seen: set[str] = set()
    for index, gift in enumerate(gifts.catalogue):
        key = f"gifts.catalogue[{index}]"
        if not GIFT_ID_RE.fullmatch(gift.id):
            raise ConfigError(f"{key}.id: {gift.id!r} must be 1-32 of a-z, 0-9, '_' or '-'")
        if gift.id in seen:
            raise ConfigError(f"{key}.id: {gift.id!r} is used twice")
        seen.add(gift.id)
        if not 1 <= len(gift.name) <= 64:
            raise ConfigError(f"{key}.name: must be 1-64 characters")
        if not 1 <= gift.price <= 1_000_000_000:
            raise ConfigError(f"{key}.price: {gift.price} is out of range 1-1000000000 coins")
        if gift.image and not re.fullmatch(r"(https?://[^\s]+|/[^\s]*)", gift.image):
            raise ConfigError(f"{key}.image: {gift.image!r} is not an http(s) URL or a path starting with '/'")


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _check_ladder(ladder: tuple[RungConfig, ...]) -> None:
    seen = {"source"}
    for index, rung in enumerate(ladder):
        key = f"transcode.ladder[{index}]"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", rung.name):
            raise ConfigError(f"{key}.name: {rung.name!r} must be 1-32 letters, digits, '_' or '-'")
        if rung.name in seen:
            raise ConfigError(f"{key}.name: {rung.name!r} is used twice (or is the reserved 'source')")
        seen.add(rung.name)
        if not 64 <= rung.height <= 4320 or rung.height % 2:
            raise ConfigError(f"{key}.height: {rung.height} must be an even number from 64 to 4320")
        for attr in ("video_bitrate", "maxrate", "bufsize"):
            if not 10_000 <= getattr(rung, attr) <= 200_000_000:
                raise ConfigError(f"{key}.{attr}: {getattr(rung, attr)} is out of range 10000-200000000")
        if rung.maxrate < rung.video_bitrate:
            raise ConfigError(f"{key}.maxrate: must be at least video_bitrate ({rung.video_bitrate})")
        if not 1 <= rung.max_fps <= 240:
            raise ConfigError(f"{key}.max_fps: {rung.max_fps} is out of range 1-240")
        if rung.preset not in X264_PRESETS:
            raise ConfigError(f"{key}.preset: {rung.preset!r} is not one of {', '.join(X264_PRESETS)}")


STREAM_NAME_RULE = "1-64 characters: letters, digits, '_', '-', '.', not starting with '.'"
STREAM_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def _get(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    # key=str: YAML keys may be numbers or dates (found by tests/fuzz), not only text.
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"{key}: unknown key (known here: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{prefix}{name}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, key + ".")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return str(value)
    if origin is tuple:
        if isinstance(value, _OverrideText) and typing.get_args(hint)[0] is str:
            # --set webhooks.urls=URL1,URL2 (an empty value is the empty list).
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        item_type = typing.get_args(hint)[0]
        return tuple(_convert(item_type, item, f"{key}[{index}]") for index, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            if isinstance(v, (dict, list)) or v is None:
                raise ConfigError(f"{key}.{k}: expected a text value")
            out[str(k)] = str(v)
        return out
    if hint is bool:
        if isinstance(value, _OverrideText):
            lowered = value.strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int or hint is float:
        if isinstance(value, _OverrideText):
            try:
                value = int(value) if hint is int else float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a {'whole ' if hint is int else ''}number, got {str(value)!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            if hint is int and not float(value).is_integer():
                raise ConfigError(f"{key}: expected a whole number, got {value!r}")
            return hint(value)
        except OverflowError:  # an integer beyond a float's range (found by tests/fuzz)
            raise ConfigError(f"{key}: the number is out of range") from None
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{key}: expected text, got {type(value).__name__}")
        return str(value)
    if isinstance(hint, types.UnionType):  # pragma: no cover - not used yet
        raise ConfigError(f"{key}: unsupported type")
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # pragma: no cover
