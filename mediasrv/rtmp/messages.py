"""RTMP message types, protocol control and command messages, aggregate messages.

Adobe RTMP spec 2012: §5.4 (protocol control messages 1-6), §6.2 (user control, type 4),
§7.1 (message types: command, data, shared object, audio, video, aggregate), §7.2
(commands). Payload builders return message payloads; chunking is :mod:`.chunk`'s job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from . import amf0
from .errors import RemoteProtocolError

__all__ = [
    "MessageType",
    "UserControlEvent",
    "PeerBandwidthLimit",
    "ChunkStreamId",
    "MEDIA_TYPES",
    "set_chunk_size",
    "abort",
    "acknowledgement",
    "window_ack_size",
    "set_peer_bandwidth",
    "user_control",
    "parse_u32",
    "UserControl",
    "parse_user_control",
    "PeerBandwidth",
    "parse_set_peer_bandwidth",
    "Command",
    "parse_command",
    "encode_command",
    "parse_data",
    "encode_data",
    "status_object",
    "SubMessage",
    "split_aggregate",
    "build_aggregate",
]


class MessageType(IntEnum):
    """Message type ids (§5.4, §7.1)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACK = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


#: Types an aggregate message may contain and that carry stream media/data.
MEDIA_TYPES = frozenset({MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0,
                         MessageType.DATA_AMF3})


class UserControlEvent(IntEnum):
    """User control message event types (§6.2, §7.1.7)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(IntEnum):
    """Limit type of Set Peer Bandwidth (§5.4.5)."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


class ChunkStreamId(IntEnum):
    """Chunk stream ids this server writes on (the layout nginx-rtmp uses)."""

    CONTROL = 2  # protocol control and user control messages (§5.4, §6.2)
    COMMAND = 3  # NetConnection commands and their answers
    STREAM = 5  # NetStream status and data messages
    AUDIO = 6
    VIDEO = 7


_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


# -- protocol control (§5.4) -------------------------------------------------------------


def set_chunk_size(size: int) -> bytes:
    """Set Chunk Size payload (§5.4.1): 31-bit size, high bit 0."""
    return _U32.pack(size & 0x7FFFFFFF)


def abort(csid: int) -> bytes:
    """Abort Message payload (§5.4.2): the chunk stream id whose message to drop."""
    return _U32.pack(csid)


def acknowledgement(sequence_number: int) -> bytes:
    """Acknowledgement payload (§5.4.3): bytes received so far, modulo 2**32."""
    return _U32.pack(sequence_number & 0xFFFFFFFF)


def window_ack_size(size: int) -> bytes:
    """Window Acknowledgement Size payload (§5.4.4)."""
    return _U32.pack(size)


def set_peer_bandwidth(size: int, limit: PeerBandwidthLimit = PeerBandwidthLimit.DYNAMIC) -> bytes:
    """Set Peer Bandwidth payload (§5.4.5): window size and limit type."""
    return _U32.pack(size) + bytes((limit,))


def user_control(event: UserControlEvent, value: int, extra: int | None = None) -> bytes:
    """User control payload (§6.2): 16-bit event type, 32-bit value (stream id or ping
    timestamp), and for SetBufferLength a second 32-bit value (buffer length in ms)."""
    out = _U16.pack(event) + _U32.pack(value & 0xFFFFFFFF)
    if extra is not None:
        out += _U32.pack(extra & 0xFFFFFFFF)
    return out


def parse_u32(payload: bytes, what: str) -> int:
    """The 32-bit big-endian value that starts ``payload``; ``what`` names it in errors."""
    if len(payload) < 4:
        raise RemoteProtocolError(f"{what} message shorter than 4 bytes")
    return _U32.unpack_from(payload)[0]


@dataclass(frozen=True, slots=True)
class UserControl:
    """A parsed user control message. ``event`` stays an ``int`` for unknown types."""

    event: int
    value: int
    extra: int | None = None


def parse_user_control(payload: bytes) -> UserControl:
    """Parse a user control payload (§6.2). Raises :class:`RemoteProtocolError` if short."""
    if len(payload) < 6:
        raise RemoteProtocolError(f"user control message of {len(payload)} bytes")
    (event,) = _U16.unpack_from(payload)
    (value,) = _U32.unpack_from(payload, 2)
    extra = None
    if event == UserControlEvent.SET_BUFFER_LENGTH:
        if len(payload) < 10:
            raise RemoteProtocolError("SetBufferLength user control message is truncated")
        (extra,) = _U32.unpack_from(payload, 6)
    try:
        event = UserControlEvent(event)
    except ValueError:
        pass
    return UserControl(event, value, extra)


@dataclass(frozen=True, slots=True)
class PeerBandwidth:
    """A parsed Set Peer Bandwidth message: window size and limit type (§5.4.5)."""

    size: int
    limit: int


def parse_set_peer_bandwidth(payload: bytes) -> PeerBandwidth:
    """Parse Set Peer Bandwidth (§5.4.5)."""
    if len(payload) < 5:
        raise RemoteProtocolError("Set Peer Bandwidth message shorter than 5 bytes")
    return PeerBandwidth(_U32.unpack_from(payload)[0], payload[4])


# -- commands and data (§7.1.1, §7.1.2, §7.2) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A command message: name, transaction id, command object, further arguments."""

    name: str
    transaction_id: float
    command_object: Any = None
    arguments: list = field(default_factory=list)


def _amf_values(payload: bytes, amf3: bool) -> list[Any]:
    offset = 0
    if amf3 and payload[:1] == b"\x00":
        # AMF3 command/data messages (types 17/15) start with a format byte 0, then the
        # body is AMF0 in which values may switch to AMF3 (AMF0 §3.1). An AMF0 body
        # always starts with a string marker (0x02), so a leading 0 is never data.
        offset = 1
    return amf0.decode_all(payload, offset)


def parse_command(payload: bytes, *, amf3: bool = False) -> Command:
    """Parse a command message body (type 20, or 17 with ``amf3=True``).

    Raises :class:`~mediasrv.rtmp.amf0.AmfError` (a :class:`RemoteProtocolError`) on bad
    AMF, :class:`RemoteProtocolError` when the name or transaction id is missing or of
    the wrong type.
    """
    values = _amf_values(payload, amf3)
    if not values or not isinstance(values[0], str):
        raise RemoteProtocolError("command message without a command name")
    name = values[0]
    tid: Any = values[1] if len(values) > 1 else 0.0
    if isinstance(tid, bool) or not isinstance(tid, (int, float)):
        raise RemoteProtocolError(f"command {name!r} with a non-numeric transaction id")
    obj = values[2] if len(values) > 2 else None
    return Command(name, float(tid), obj, values[3:])


def encode_command(name: str, transaction_id: float, command_object: Any = None,
                   *arguments: Any) -> bytes:
    """Encode an AMF0 command message body (type 20)."""
    return amf0.encode_all((name, float(transaction_id), command_object, *arguments))


def parse_data(payload: bytes, *, amf3: bool = False) -> tuple[str, list]:
    """Parse a data message body (type 18, or 15 with ``amf3=True``) into
    ``(name, values)``, unwrapping ``@setDataFrame``: ``@setDataFrame("onMetaData", m)``
    gives ``("onMetaData", [m])``."""
    values = _amf_values(payload, amf3)
    if not values or not isinstance(values[0], str):
        raise RemoteProtocolError("data message without a name")
    name, rest = values[0], values[1:]
    if name == "@setDataFrame":
        if not rest or not isinstance(rest[0], str):
            raise RemoteProtocolError("@setDataFrame without a handler name")
        name, rest = rest[0], rest[1:]
    return name, rest


def encode_data(name: str, *values: Any) -> bytes:
    """Encode an AMF0 data message body (type 18)."""
    return amf0.encode_all((name, *values))


def status_object(level: str, code: str, description: str, **extra: Any) -> dict:
    """An ``onStatus``/``_result`` information object (§7.2.1.1, §7.2.2)."""
    obj = {"level": level, "code": code, "description": description}
    obj.update(extra)
    return obj


# -- aggregate messages (§7.1.6) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubMessage:
    """One message out of an aggregate, its timestamp already renormalised."""

    type_id: int
    timestamp: int
    payload: bytes


_AGG_HEADER = 11  # type 1, size 3, timestamp 3 + 1 (high byte), stream id 3
_BACK_POINTER = 4


def split_aggregate(payload: bytes, timestamp: int) -> list[SubMessage]:
    """Split an aggregate message body (§7.1.6) into its sub-messages.

    Each sub-message is an FLV-tag-like header (type, 24-bit size, 24-bit timestamp plus
    an 8-bit high byte, 24-bit stream id), the body, then a 4-byte back pointer. The
    aggregate's timestamp minus the first sub-message's is the offset added to every
    sub-message timestamp; the aggregate's message stream id applies to all of them.
    Only audio, video and data messages may be aggregated.
    """
    out: list[SubMessage] = []
    pos = 0
    end = len(payload)
    offset: int | None = None
    while pos < end:
        if end - pos < _AGG_HEADER:
            raise RemoteProtocolError("aggregate message: truncated sub-message header")
        type_id = payload[pos]
        size = int.from_bytes(payload[pos + 1:pos + 4], "big")
        ts = int.from_bytes(payload[pos + 4:pos + 7], "big") | (payload[pos + 7] << 24)
        pos += _AGG_HEADER
        if size > end - pos:
            raise RemoteProtocolError(
                f"aggregate message: sub-message of {size} bytes, {end - pos} left")
        if type_id not in MEDIA_TYPES:
            raise RemoteProtocolError(f"aggregate message contains a message of type {type_id}")
        if offset is None:
            offset = timestamp - ts
        out.append(SubMessage(type_id, (ts + offset) & 0xFFFFFFFF, payload[pos:pos + size]))
        pos += size
        left = end - pos
        if left >= _BACK_POINTER:
            pos += _BACK_POINTER  # back pointer: size of the previous tag; not needed
        elif left:
            raise RemoteProtocolError("aggregate message: truncated back pointer")
    return out


def build_aggregate(parts: list[tuple[int, int, bytes]], stream_id: int = 0) -> bytes:
    """Build an aggregate body from ``(type_id, timestamp, payload)`` tuples (§7.1.6)."""
    out = bytearray()
    for type_id, ts, body in parts:
        ts &= 0xFFFFFFFF
        out.append(type_id)
        out += len(body).to_bytes(3, "big")
        out += (ts & 0xFFFFFF).to_bytes(3, "big")
        out.append(ts >> 24)
        out += (stream_id & 0xFFFFFF).to_bytes(3, "big")
        out += body
        out += _U32.pack(_AGG_HEADER + len(body))
    return bytes(out)
