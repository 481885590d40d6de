"""RTMP chunk stream: reassemble messages from chunks and split messages into chunks.

Adobe RTMP spec 2012 §5.3 (chunking) and §5.4.1-5.4.2 (Set Chunk Size, Abort Message,
which act on the chunk layer and are therefore applied here as soon as they are read).

The reader parses from one ``bytearray`` with a read offset: no per-chunk copying of the
buffer, one copy of each payload byte into its message (none for messages that fit one
chunk and arrive whole). Memory is bounded by ``max_message_size`` per message, by the
number of chunk streams and by the number and total declared size of partial messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "Message",
    "ChunkReader",
    "ChunkWriter",
    "encode_basic_header",
]

#: Chunk size until a Set Chunk Size arrives (§5.4.1).
DEFAULT_CHUNK_SIZE = 128
#: Largest chunk size: 31 bits, the high bit of Set Chunk Size must be 0 (§5.4.1).
MAX_CHUNK_SIZE = 0x7FFFFFFF
#: The message-header timestamp value that announces an extended timestamp (§5.3.1.3).
EXTENDED_TIMESTAMP = 0xFFFFFF
#: Largest chunk stream id: 3-byte basic header, 65535 + 64 (§5.3.1.1).
MAX_CSID = 65599

_TYPE_SET_CHUNK_SIZE = 1
_TYPE_ABORT = 2
_U32 = struct.Struct(">I")
_U32LE = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Message:
    """One reassembled RTMP message (§5.3.1 header fields + payload)."""

    csid: int
    type_id: int
    stream_id: int
    #: Absolute timestamp in ms, 32 bits, deltas resolved and wrapped.
    timestamp: int
    payload: bytes


class _ChunkStream:
    """Per chunk stream id state: the last header's fields and the message in progress."""

    __slots__ = ("csid", "timestamp", "delta", "length", "type_id", "stream_id",
                 "extended", "ext_value", "remaining", "body")

    def __init__(self, csid: int) -> None:
        self.csid = csid
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        #: The last message header (fmt 0/1/2) carried an extended timestamp, so fmt 3
        #: chunks of this stream carry one too (§5.3.1.3).
        self.extended = False
        self.ext_value = 0
        #: Payload bytes still to come for the message in progress (0 = none in progress).
        self.remaining = 0
        self.body: bytearray | None = None


class ChunkReader:
    """Incremental chunk stream parser (either side of a connection).

    ``feed(bytes)`` then call ``next_message()`` until it returns ``None``; or use
    :meth:`receive_data` for both. Set Chunk Size and Abort are applied when read and
    still returned, so the caller sees every message. :meth:`next_fields` is
    ``next_message`` without the :class:`Message`: a plain tuple of its fields, for the
    connection, which reads every message's fields once and keeps none of them.
    """

    def __init__(self, *, max_message_size: int = 8 * 1024 * 1024,
                 max_chunk_streams: int = 64, max_partial_messages: int = 8,
                 max_partial_bytes: int | None = None) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _ChunkStream] = {}
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_partial_messages = max_partial_messages
        #: Cap of the summed declared lengths of all incomplete messages.
        self.max_partial_bytes = (2 * max_message_size if max_partial_bytes is None
                                  else max_partial_bytes)
        self._partial_count = 0
        self._partial_bytes = 0
        # The chunk whose payload we are in the middle of (bytes of it still to come).
        self._current: _ChunkStream | None = None
        self._chunk_left = 0

    @property
    def chunk_size(self) -> int:
        """The peer's current chunk size."""
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """Apply a chunk size (normally done by reading a Set Chunk Size message)."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise RemoteProtocolError(f"invalid chunk size {size}")
        self._chunk_size = size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes to the buffer."""
        self._buf += data

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Feed ``data`` and return every message completed by it."""
        self.feed(data)
        out = []
        while (msg := self.next_message()) is not None:
            out.append(msg)
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed."""
        return len(self._buf) - self._pos

    def _compact(self) -> None:
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0

    def next_message(self) -> Message | None:
        """Parse buffered bytes up to the next complete message; ``None`` if none yet.

        Raises :class:`RemoteProtocolError` on malformed chunk data or exceeded limits.
        """
        fields = self.next_fields()
        return None if fields is None else Message(*fields)

    def next_fields(self) -> tuple[int, int, int, int, bytes] | None:
        """:meth:`next_message` as a ``(csid, type_id, stream_id, timestamp, payload)``
        tuple (the :class:`Message` fields, in order); ``None`` if none yet.

        The connection reads each message's fields once and drops it, for every audio
        and video message: a tuple costs a fraction of building a frozen dataclass."""
        buf = self._buf
        while True:
            st = self._current
            if st is not None:
                # Inside a chunk's payload.
                avail = len(buf) - self._pos
                if avail <= 0:
                    self._compact()
                    return None
                n = min(avail, self._chunk_left)
                with memoryview(buf) as view:  # released before the buffer resizes
                    st.body += view[self._pos:self._pos + n]  # type: ignore[operator]
                self._pos += n
                self._chunk_left -= n
                st.remaining -= n
                if self._chunk_left:
                    self._compact()
                    return None
                self._current = None
                if st.remaining == 0:
                    return self._complete(st, bytes(st.body))
                continue
            msg = self._parse_chunk()
            if msg is None:
                if self._current is None:
                    self._compact()
                    return None
                continue
            if msg is not True:
                return msg

    def _parse_chunk(self):
        """Parse one chunk header (and the payload, if it is all there).

        Returns ``None`` when more bytes are needed, ``True`` when a chunk was consumed
        without completing a message, or the completed message's fields (see
        :meth:`next_fields`).
        """
        buf = self._buf
        p = self._pos
        end = len(buf)
        if p >= end:
            return None
        # Basic header (§5.3.1.1): fmt in the top 2 bits; csid 2-63 inline, 0 = one
        # more byte (+64), 1 = two more bytes little endian (+64).
        b0 = buf[p]
        fmt = b0 >> 6
        csid = b0 & 0x3F
        if csid == 0:
            if end - p < 2:
                return None
            csid = buf[p + 1] + 64
            p += 2
        elif csid == 1:
            if end - p < 3:
                return None
            csid = buf[p + 1] + (buf[p + 2] << 8) + 64
            p += 3
        else:
            p += 1

        st = self._streams.get(csid)
        if st is None:
            if fmt != 0:
                # fmt 1-3 reuse fields of a previous header that does not exist (§5.3.1.2).
                raise RemoteProtocolError(f"chunk stream {csid} starts with a fmt {fmt} header")
            if len(self._streams) >= self.max_chunk_streams:
                raise RemoteProtocolError(f"more than {self.max_chunk_streams} chunk streams")
        elif fmt != 3 and st.remaining:
            # Continuation chunks must be fmt 3 (§5.3.1.2.4); anything else means the
            # peer forgot the unfinished message.
            raise RemoteProtocolError(
                f"chunk stream {csid}: fmt {fmt} header while a message is incomplete")

        # Message header (§5.3.1.2).
        if fmt == 0:
            if end - p < 11:
                return None
            ts = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
            type_id = buf[p + 6]
            (stream_id,) = _U32LE.unpack_from(buf, p + 7)
            p += 11
        elif fmt == 1:
            if end - p < 7:
                return None
            ts = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
            type_id = buf[p + 6]
            p += 7
        elif fmt == 2:
            if end - p < 3:
                return None
            ts = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            p += 3
        else:
            ts = 0

        if fmt != 3:
            extended = ts == EXTENDED_TIMESTAMP
            if extended:
                if end - p < 4:
                    return None
                (ts,) = _U32.unpack_from(buf, p)
                p += 4
        elif st.extended:  # type: ignore[union-attr]
            # fmt 3 after a header with an extended timestamp: the 4-byte field follows
            # here too (§5.3.1.3).
            if end - p < 4:
                return None
            (value,) = _U32.unpack_from(buf, p)
            if st.remaining:  # type: ignore[union-attr]
                # Continuation: the field repeats the header's value. Some old encoders
                # omit it; if the bytes differ they are payload, leave them (as SRS does).
                if value == st.ext_value:  # type: ignore[union-attr]
                    p += 4
            else:
                ts = value
                p += 4

        # All header bytes are present: commit.
        if st is None:
            st = _ChunkStream(csid)
            self._streams[csid] = st
        if fmt == 0:
            st.timestamp = ts
            # §5.3.1.2.4: "If a Type 3 chunk follows a Type 0 chunk, then the timestamp
            # delta for this Type 3 chunk is the same as the timestamp of the Type 0
            # chunk" (what FFmpeg's writer and reader do).
            st.delta = ts
            st.length = length
            st.type_id = type_id
            st.stream_id = stream_id
            st.extended = extended
            st.ext_value = ts
        elif fmt == 1 or fmt == 2:
            st.delta = ts
            st.timestamp = (st.timestamp + ts) & 0xFFFFFFFF
            if fmt == 1:
                st.length = length
                st.type_id = type_id
            st.extended = extended
            st.ext_value = ts
        elif not st.remaining:
            # fmt 3 starting a new message: everything, the delta included, repeats.
            if st.extended:
                st.delta = ts
                st.ext_value = ts
            st.timestamp = (st.timestamp + st.delta) & 0xFFFFFFFF
        self._pos = p

        if not st.remaining:
            # A new message starts.
            length = st.length
            if length > self.max_message_size:
                raise RemoteProtocolError(
                    f"message of {length} bytes exceeds the limit of {self.max_message_size}")
            if length == 0:
                return self._complete(st, b"")
            if length <= self._chunk_size and end - p >= length:
                # Whole single-chunk message available: one copy, no accumulation.
                self._pos = p + length
                return self._complete_single(st, bytes(buf[p:p + length]))
            if self._partial_count >= self.max_partial_messages:
                raise RemoteProtocolError(
                    f"more than {self.max_partial_messages} interleaved partial messages")
            if self._partial_bytes + length > self.max_partial_bytes:
                raise RemoteProtocolError(
                    f"partial messages of more than {self.max_partial_bytes} bytes in total")
            if csid <= 63 and not st.extended:
                whole = self._gather(st, p, length)
                if whole is not None:
                    return whole
            self._partial_count += 1
            self._partial_bytes += length
            st.remaining = length
            st.body = bytearray()
        self._current = st
        self._chunk_left = min(self._chunk_size, st.remaining)
        return True

    def _gather(self, st: _ChunkStream, p: int, length: int) -> tuple[int, int, int, int, bytes] | None:
        """A multi-chunk message whose chunks are all buffered back to back, in one step.

        With the read batching of the server, a video frame's chunks are usually all in
        the buffer, unbroken by other chunk streams: payload, then for each continuation
        a one-byte fmt 3 basic header of the same chunk stream (§5.3.1.1, csid 2-63;
        §5.3.1.2.4) and the next ``chunk_size`` bytes. Checked byte for byte and joined
        with one copy; anything else (interleaving, a partial message, extended
        timestamps, whose continuations may repeat a 4-byte field, §5.3.1.3) returns None
        and goes chunk by chunk as before."""
        size = self._chunk_size
        continuations = (length - 1) // size
        stop = p + length + continuations
        buf = self._buf
        if len(buf) < stop:
            return None
        marker = 0xC0 | st.csid  # fmt 3 in the top two bits, the csid in the low six
        step = size + 1
        for header in range(p + size, stop, step):
            if buf[header] != marker:
                return None
        with memoryview(buf) as view:  # released before the buffer can resize
            payload = b"".join([view[start:min(start + size, stop)] for start in range(p, stop, step)])
        self._pos = stop
        return self._complete_single(st, payload)

    def _complete_single(self, st: _ChunkStream, payload: bytes) -> tuple[int, int, int, int, bytes]:
        type_id = st.type_id
        if type_id <= _TYPE_ABORT:
            self._control(type_id, payload)
        return st.csid, type_id, st.stream_id, st.timestamp, payload

    def _complete(self, st: _ChunkStream, payload: bytes) -> tuple[int, int, int, int, bytes]:
        if st.body is not None:
            self._partial_count -= 1
            self._partial_bytes -= st.length
            st.body = None
        st.remaining = 0
        return self._complete_single(st, payload)

    def _control(self, type_id: int, payload: bytes) -> None:
        if type_id == _TYPE_SET_CHUNK_SIZE:
            if len(payload) < 4:
                raise RemoteProtocolError("Set Chunk Size message shorter than 4 bytes")
            (size,) = _U32.unpack_from(payload)
            # §5.4.1: 31 bits, the first bit MUST be zero; a size of 0 is meaningless.
            if size & 0x80000000:
                raise RemoteProtocolError(f"Set Chunk Size with the high bit set (0x{size:08x})")
            if size == 0:
                raise RemoteProtocolError("Set Chunk Size of 0")
            self._chunk_size = size
        elif type_id == _TYPE_ABORT:
            if len(payload) < 4:
                raise RemoteProtocolError("Abort message shorter than 4 bytes")
            (csid,) = _U32.unpack_from(payload)
            self.abort(csid)

    def abort(self, csid: int) -> None:
        """Drop the partial message of chunk stream ``csid`` (§5.4.2 Abort Message)."""
        st = self._streams.get(csid)
        if st is None or not st.remaining or st is self._current:
            return
        self._partial_count -= 1
        self._partial_bytes -= st.length
        st.body = None
        st.remaining = 0


def encode_basic_header(fmt: int, csid: int) -> bytes:
    """The 1, 2 or 3-byte basic header for ``fmt`` and ``csid`` (shortest form, §5.3.1.1)."""
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= MAX_CSID:
        c = csid - 64
        return bytes(((fmt << 6) | 1, c & 0xFF, c >> 8))
    raise LocalProtocolError(f"invalid chunk stream id {csid}")


class _OutStream:
    __slots__ = ("timestamp", "length", "type_id", "stream_id")

    def __init__(self, timestamp: int, length: int, type_id: int, stream_id: int) -> None:
        self.timestamp = timestamp
        self.length = length
        self.type_id = type_id
        self.stream_id = stream_id


class ChunkWriter:
    """Splits messages into chunks with our chunk size.

    The first message on a chunk stream uses fmt 0; later ones fmt 1 (same message
    stream, timestamp not going back) or fmt 2 (also same type and length). fmt 3 is only
    used for continuation chunks: a fmt 3 *new* message means "repeat the last delta",
    which librtmp-derived readers interpret differently from the spec.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self.chunk_size = chunk_size
        self._streams: dict[int, _OutStream] = {}

    @property
    def chunk_size(self) -> int:
        """Our outgoing chunk size. Announce a change with a Set Chunk Size message
        written *before* changing it here."""
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, size: int) -> None:
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise LocalProtocolError(f"invalid chunk size {size}")
        self._chunk_size = size

    def write(self, csid: int, type_id: int, stream_id: int, timestamp: int,
              payload: bytes | bytearray | memoryview) -> bytes:
        """Chunk one message; returns the bytes to send. ``timestamp`` wraps at 32 bits."""
        length = len(payload)
        if length > 0xFFFFFF:
            raise LocalProtocolError(f"message of {length} bytes does not fit 24 bits")
        timestamp &= 0xFFFFFFFF
        prev = self._streams.get(csid)
        if prev is None or prev.stream_id != stream_id or timestamp < prev.timestamp:
            fmt = 0
            field = timestamp
        else:
            field = timestamp - prev.timestamp
            fmt = 2 if (prev.type_id == type_id and prev.length == length) else 1
        ext = field >= EXTENDED_TIMESTAMP
        ts24 = EXTENDED_TIMESTAMP if ext else field
        head = bytearray(encode_basic_header(fmt, csid))
        head += ts24.to_bytes(3, "big")
        if fmt <= 1:
            head += length.to_bytes(3, "big")
            head.append(type_id)
            if fmt == 0:
                head += _U32LE.pack(stream_id)
        ext_bytes = _U32.pack(field) if ext else b""
        head += ext_bytes
        if prev is None:
            self._streams[csid] = _OutStream(timestamp, length, type_id, stream_id)
        else:
            prev.timestamp, prev.length, prev.type_id, prev.stream_id = (
                timestamp, length, type_id, stream_id)

        size = self._chunk_size
        if length <= size:
            return bytes(head) + bytes(payload)
        # Continuation chunks: fmt 3, repeating the extended timestamp (§5.3.1.3).
        cont = encode_basic_header(3, csid) + ext_bytes
        view = memoryview(payload)
        parts = [bytes(head), view[:size]]
        for off in range(size, length, size):
            parts.append(cont)
            parts.append(view[off:off + size])
        return b"".join(parts)
