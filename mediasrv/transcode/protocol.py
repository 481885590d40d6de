"""The pipe protocol between the server and a transcode worker (pure, no I/O).

Every message is ``length (u32 big-endian) | type (u8) | body`` where ``length`` counts
the type byte and the body. Media travels compressed, with millisecond timestamps, in
MP4 sample format (length-prefixed NAL units, AV1 OBUs, raw AAC frames): decoded frames
never cross the process boundary.

Server → worker:

- ``CONFIG`` (JSON): the ladder plan input (``rungs``), ``audio_bitrate``,
  ``max_queue_seconds``, ``live`` (False: never drop, block instead — benchmarks).
- ``VIDEO_TRACK`` / ``AUDIO_TRACK`` (JSON): the source track's codec, configuration
  record (base64), size / rate; sent before the first unit and whenever it changes.
- ``VIDEO``: ``dts i64 | pts i64 | flags u8 | data`` (flags: keyframe, force a keyframe in
  every rung, discontinuity).
- ``AUDIO``: ``dts i64 | pts i64 | data``.
- ``END``: no more input; drain, flush and exit.

Worker → server:

- ``RUNG`` (JSON): a rung's output track (``index``, ``name``, ``codec``, ``config``
  base64 avcC, ``width``, ``height``), sent before its first packet and on a change;
  ``index`` ``AUDIO_INDEX`` for the shared AAC track (``config`` = AudioSpecificConfig).
- ``PACKET``: ``index u8 | dts i64 | pts i64 | flags u8 | data`` (flags: keyframe,
  discontinuity: the first packet after the rung was paused).
- ``STATS`` (JSON): counters, also the heartbeat (a few times a second).
- ``EVENT`` (JSON): something the server should log with the stream's name
  (``{"level": "warning", "message": ...}``).
"""

from __future__ import annotations

import base64
import enum
import json
import struct
from dataclasses import dataclass

#: Largest message accepted either way (a 4K keyframe is well below this).
MAX_MESSAGE = 64 * 1024 * 1024
#: ``index`` of the audio track in ``RUNG``/``PACKET`` messages.
AUDIO_INDEX = 255

_HEADER = struct.Struct(">IB")
_VIDEO = struct.Struct(">qqB")
_AUDIO = struct.Struct(">qq")
_PACKET = struct.Struct(">BqqB")

FLAG_KEYFRAME = 0x01
FLAG_FORCE_KEYFRAME = 0x02
FLAG_DISCONTINUITY = 0x04


class MessageType(enum.IntEnum):
    CONFIG = 0x01
    VIDEO_TRACK = 0x02
    AUDIO_TRACK = 0x03
    VIDEO = 0x04
    AUDIO = 0x05
    END = 0x06
    RUNG = 0x11
    PACKET = 0x12
    STATS = 0x13
    EVENT = 0x14


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol."""


@dataclass(frozen=True, slots=True)
class VideoIn:
    dts: int
    pts: int
    keyframe: bool
    force_keyframe: bool
    discontinuity: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class AudioIn:
    dts: int
    pts: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PacketOut:
    index: int
    dts: int
    pts: int
    keyframe: bool
    discontinuity: bool
    data: bytes


# --- building ----------------------------------------------------------------------------


def frame(kind: MessageType, body: bytes = b"") -> bytes:
    if len(body) + 1 > MAX_MESSAGE:
        raise ValueError(f"message of {len(body)} bytes is too large")
    return _HEADER.pack(len(body) + 1, kind) + body


def json_message(kind: MessageType, value: dict) -> bytes:
    return frame(kind, json.dumps(value, separators=(",", ":")).encode())


def video_message(dts: int, pts: int, data: bytes, *, keyframe: bool, force_keyframe: bool = False,
                  discontinuity: bool = False) -> bytes:
    flags = (FLAG_KEYFRAME if keyframe else 0) | (FLAG_FORCE_KEYFRAME if force_keyframe else 0) \
        | (FLAG_DISCONTINUITY if discontinuity else 0)
    return frame(MessageType.VIDEO, _VIDEO.pack(dts, pts, flags) + data)


def audio_message(dts: int, pts: int, data: bytes) -> bytes:
    return frame(MessageType.AUDIO, _AUDIO.pack(dts, pts) + data)


def packet_header(index: int, dts: int, pts: int, *, keyframe: bool, discontinuity: bool, size: int) -> bytes:
    """Header of a ``PACKET`` message whose ``size`` data bytes follow (no concatenation
    of large payloads)."""
    flags = (FLAG_KEYFRAME if keyframe else 0) | (FLAG_DISCONTINUITY if discontinuity else 0)
    body = _PACKET.size + size
    if body + 1 > MAX_MESSAGE:
        raise ValueError(f"packet of {size} bytes is too large")
    return _HEADER.pack(body + 1, MessageType.PACKET) + _PACKET.pack(index, dts, pts, flags)


def packet_message(index: int, dts: int, pts: int, data: bytes, *, keyframe: bool, discontinuity: bool = False) -> bytes:
    return packet_header(index, dts, pts, keyframe=keyframe, discontinuity=discontinuity, size=len(data)) + data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# --- parsing -----------------------------------------------------------------------------


def parse(kind: int, body: bytes):
    """Turn one message body into a value: a dict for JSON messages, ``VideoIn``,
    ``AudioIn``, ``PacketOut``, or None for ``END``."""
    try:
        kind = MessageType(kind)
    except ValueError:
        raise ProtocolError(f"unknown message type {kind:#x}") from None
    if kind in (MessageType.CONFIG, MessageType.VIDEO_TRACK, MessageType.AUDIO_TRACK,
                MessageType.RUNG, MessageType.STATS, MessageType.EVENT):
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"{kind.name}: not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ProtocolError(f"{kind.name}: expected an object")
        return value
    if kind is MessageType.VIDEO:
        if len(body) < _VIDEO.size:
            raise ProtocolError("VIDEO: truncated")
        dts, pts, flags = _VIDEO.unpack_from(body)
        return VideoIn(dts, pts, bool(flags & FLAG_KEYFRAME), bool(flags & FLAG_FORCE_KEYFRAME),
                       bool(flags & FLAG_DISCONTINUITY), body[_VIDEO.size:])
    if kind is MessageType.AUDIO:
        if len(body) < _AUDIO.size:
            raise ProtocolError("AUDIO: truncated")
        dts, pts = _AUDIO.unpack_from(body)
        return AudioIn(dts, pts, body[_AUDIO.size:])
    if kind is MessageType.PACKET:
        if len(body) < _PACKET.size:
            raise ProtocolError("PACKET: truncated")
        index, dts, pts, flags = _PACKET.unpack_from(body)
        return PacketOut(index, dts, pts, bool(flags & FLAG_KEYFRAME), bool(flags & FLAG_DISCONTINUITY),
                         body[_PACKET.size:])
    return None  # END


def parse_header(header: bytes) -> tuple[int, int]:
    """``(body length after the type byte, type)`` of a 5-byte message header."""
    length, kind = _HEADER.unpack(header)
    if not 1 <= length <= MAX_MESSAGE:
        raise ProtocolError(f"message length {length} out of range")
    return length - 1, kind


HEADER_SIZE = _HEADER.size


def read_message(stream) -> tuple[MessageType, object] | None:
    """Read one message from a blocking binary file object; None at a clean end of file."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    size, kind = parse_header(header)
    body = _read_exact(stream, size) if size else b""
    if body is None:
        raise ProtocolError("end of file inside a message")
    value = parse(kind, body)
    return MessageType(kind), value


def _read_exact(stream, size: int) -> bytes | None:
    if size == 0:
        return b""
    data = stream.read(size)
    if not data:
        return None
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            raise ProtocolError("end of file inside a message")
        data += more
    return data
