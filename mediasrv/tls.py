"""TLS for the listeners: RTMPS (``rtmp.tls_listen``) and HTTPS (``http.tls_cert``).

The context is the standard library's server default (TLS 1.2 and later, the OpenSSL
defaults for ciphers) loaded with the configured PEM chain and key. A file that cannot
be read or does not match is a ``ConfigError`` naming the key, at start, not a
traceback at the first connection.
"""

from __future__ import annotations

import ssl

from mediasrv.config import Config, ConfigError


def server_context(cert: str, key: str, *, keys: str) -> ssl.SSLContext:
    """A server ``SSLContext`` for ``cert``/``key``; ``keys`` names them in errors."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"{keys}: cannot read {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{keys}: not a usable PEM certificate and key ({exc})") from None
    return context


def http_context(config: Config) -> ssl.SSLContext | None:
    """The HTTPS context, or None when the HTTP listener speaks plain HTTP."""
    http = config.http
    if not http.tls_cert:
        return None
    context = server_context(http.tls_cert, http.tls_key, keys="http.tls_cert, http.tls_key")
    # HTTP/1.1 only: aiohttp does not speak HTTP/2 (docs/low-latency.md: put an HTTP/2
    # proxy in front for Apple's LL-HLS players).
    context.set_alpn_protocols(["http/1.1"])
    return context


def rtmp_context(config: Config) -> ssl.SSLContext | None:
    """The RTMPS context, or None when no RTMPS listener is configured."""
    rtmp = config.rtmp
    if not rtmp.tls_listen:
        return None
    return server_context(rtmp.tls_cert, rtmp.tls_key, keys="rtmp.tls_cert, rtmp.tls_key")
