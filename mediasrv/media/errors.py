"""Errors raised by the media layer.

All of them are *remote* errors in the sense of the house rules: they describe bad or
unsupported input from a publisher, never a bug in the server. Callers catch
:class:`MediaError` and decide (drop the tag, count it, or close the connection).
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by :mod:`mediasrv.media`."""


class MalformedMediaError(MediaError):
    """A tag, configuration record or bitstream is truncated or violates its specification."""


class UnsupportedCodecError(MediaError):
    """Well-formed input in a codec (or a packet kind) that the server does not carry.

    The message names the codec, e.g. ``"Opus audio (Enhanced RTMP FourCC 'Opus')"``.
    """
