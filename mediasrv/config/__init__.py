"""Typed configuration: defaults < YAML file < ``MEDIASRV_SECTION__KEY`` variables <
``--set KEY=VALUE``, validated at start.

Every key is declared once, with its bounds, in ``mediasrv.config.model`` and documented
in ``config/mediasrv.yaml``; errors (``ConfigError``) name the dotted key and where its
value came from, and the command line turns them into exit status 2. Config objects are
immutable: ``replace(obj, key=value)`` makes a validated copy.
"""

from mediasrv.config.base import (
    GIFT_ID_RE,
    HANDLE_RE,
    HANDLE_RULE,
    STREAM_NAME_RE,
    STREAM_NAME_RULE,
    ConfigError,
    ListenAddress,
    Secret,
    parse_listen,
)
from mediasrv.config.model import (
    VISIBILITIES,
    X264_PRESETS,
    AccountsConfig,
    AnalyticsConfig,
    AuthConfig,
    ChatConfig,
    ClusterConfig,
    EmailConfig,
    Config,
    GiftConfig,
    GiftsConfig,
    HlsConfig,
    HttpConfig,
    HubConfig,
    ImagesConfig,
    IceServerConfig,
    LiveAccessConfig,
    LiveConfig,
    LogConfig,
    ModerationConfig,
    RecordingConfig,
    RtmpConfig,
    RungConfig,
    ThumbnailsConfig,
    TranscodeConfig,
    UploadsConfig,
    ViewersConfig,
    WebhookConfig,
    WebhooksConfig,
    WebrtcConfig,
    replace,
)
from mediasrv.config.redact import redacted
from mediasrv.config.schema import config_schema, schema_text
from mediasrv.config.sources import apply_override, build_config, load_config

__all__ = [
    "GIFT_ID_RE", "HANDLE_RE", "HANDLE_RULE", "STREAM_NAME_RE", "STREAM_NAME_RULE", "VISIBILITIES", "X264_PRESETS",
    "AccountsConfig", "AnalyticsConfig", "AuthConfig", "ChatConfig", "ClusterConfig", "Config", "ConfigError",
    "EmailConfig", "ImagesConfig",
    "GiftConfig", "GiftsConfig", "HlsConfig", "HttpConfig", "HubConfig", "IceServerConfig", "ListenAddress",
    "LiveAccessConfig", "LiveConfig", "LogConfig", "ModerationConfig", "RecordingConfig", "RtmpConfig", "RungConfig",
    "Secret", "ThumbnailsConfig",
    "TranscodeConfig", "UploadsConfig", "ViewersConfig", "WebhookConfig", "WebhooksConfig", "WebrtcConfig",
    "apply_override", "build_config", "config_schema", "load_config", "parse_listen", "redacted", "replace",
    "schema_text",
]
