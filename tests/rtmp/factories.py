"""Client-side RTMP wire bytes for tests, and a reader for what the server sends back.

Reusable from any test::

    from tests.rtmp.factories import Client, c0c1_plain, read_server

    client = Client()
    wire = client.handshake_c0c1() ... client.connect(app="live")

Everything is deterministic (seeded randomness). The handshake constants are spelled
out here independently of ``mediasrv.rtmp.handshake`` so tests check the server against
the published values, not against itself.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from mediasrv.rtmp import amf0
from mediasrv.rtmp import messages as m
from mediasrv.rtmp.amf0 import EcmaArray
from mediasrv.rtmp.chunk import ChunkReader, Message
from mediasrv.rtmp.messages import MessageType as T
from mediasrv.rtmp.messages import UserControlEvent as UC

HANDSHAKE_SIZE = 1536
#: "Genuine Adobe Flash Player 001" followed by its 32-byte tail (librtmp GenuineFPKey).
FP_KEY = bytes([
    0x47, 0x65, 0x6E, 0x75, 0x69, 0x6E, 0x65, 0x20, 0x41, 0x64, 0x6F, 0x62, 0x65, 0x20,
    0x46, 0x6C, 0x61, 0x73, 0x68, 0x20, 0x50, 0x6C, 0x61, 0x79, 0x65, 0x72, 0x20, 0x30,
    0x30, 0x31,
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E,
    0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36,
    0xCF, 0xEB, 0x31, 0xAE,
])
#: "Genuine Adobe Flash Media Server 001" followed by the same tail (librtmp GenuineFMSKey).
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + FP_KEY[30:]
assert len(FP_KEY) == 62 and len(FMS_KEY) == 68


def seeded_random(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes`` callable for ``RtmpConnection``/handshakes."""
    rng = random.Random(seed)
    return rng.randbytes


# -- handshake ----------------------------------------------------------------------------


def c0(version: int = 3) -> bytes:
    """C0: the version byte."""
    return bytes((version,))


def c1_plain(*, time: int = 0, seed: int = 1) -> bytes:
    """A plain C1 (RTMP spec §5.2.3): time, four zero bytes, 1528 random bytes."""
    return time.to_bytes(4, "big") + b"\x00" * 4 + random.Random(seed).randbytes(1528)


def digest_position(packet: bytes, scheme: int) -> int:
    """librtmp GetDigestOffset1 (scheme 0, offset at byte 8) / GetDigestOffset2 (scheme 1,
    offset at byte 772)."""
    if scheme == 0:
        return sum(packet[8:12]) % 728 + 12
    return sum(packet[772:776]) % 728 + 776


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def packet_digest(packet: bytes, pos: int, key: bytes) -> bytes:
    """librtmp CalculateDigest: HMAC over the packet without the 32 digest bytes."""
    return hmac_sha256(key, packet[:pos] + packet[pos + 32:])


def c1_digest(*, scheme: int = 0, version: bytes = bytes((9, 0, 124, 2)), time: int = 0,
              seed: int = 1) -> bytes:
    """A Flash-style digest C1 as librtmp/FFmpeg build it (client version non-zero, digest
    keyed by the first 30 bytes of the FP key at the scheme's position)."""
    pkt = bytearray(time.to_bytes(4, "big") + version + random.Random(seed).randbytes(1528))
    pos = digest_position(pkt, scheme)
    pkt[pos:pos + 32] = packet_digest(bytes(pkt), pos, FP_KEY[:30])
    return bytes(pkt)


def split_handshake(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Split server output into S0, S1, S2 and the rest."""
    assert len(data) >= 1 + 2 * HANDSHAKE_SIZE, f"only {len(data)} bytes"
    s1 = data[1:1 + HANDSHAKE_SIZE]
    s2 = data[1 + HANDSHAKE_SIZE:1 + 2 * HANDSHAKE_SIZE]
    return data[:1], s1, s2, data[1 + 2 * HANDSHAKE_SIZE:]


def verify_digest_s1s2(c1: bytes, s1: bytes, s2: bytes) -> int:
    """Check S1/S2 like librtmp's client (HandShake with FP9HandShake): the S1 digest at
    either scheme's position keyed by the FMS key's first 36 bytes, then S2's signature
    keyed by HMAC(C1 digest) with the whole FMS key. Returns the S1 scheme."""
    assert s1[4] != 0, "server version must be non-zero for a digest handshake"
    for scheme in (1, 0):  # librtmp tries offset 772 first, then offset 8
        pos = digest_position(s1, scheme)
        if packet_digest(s1, pos, FMS_KEY[:36]) == s1[pos:pos + 32]:
            break
    else:
        raise AssertionError("S1 digest does not verify")
    for c_scheme in (0, 1):
        cpos = digest_position(c1, c_scheme)
        if packet_digest(c1, cpos, FP_KEY[:30]) == c1[cpos:cpos + 32]:
            break
    else:
        raise AssertionError("C1 has no digest")
    key = hmac_sha256(FMS_KEY, c1[cpos:cpos + 32])
    assert hmac_sha256(key, s2[:-32]) == s2[-32:], "S2 signature does not verify"
    return scheme


# -- chunk headers --------------------------------------------------------------------------


def basic_header(fmt: int, csid: int, *, form: int | None = None) -> bytes:
    """Basic header (§5.3.1.1) in the shortest form, or forced ``form`` = 1, 2 or 3 bytes
    (csid 64-319 may be written in the 3-byte form too)."""
    if form is None:
        form = 1 if csid < 64 else 2 if csid < 320 else 3
    if form == 1:
        assert 2 <= csid <= 63
        return bytes(((fmt << 6) | csid,))
    if form == 2:
        assert 64 <= csid <= 319
        return bytes((fmt << 6, csid - 64))
    assert 64 <= csid <= 65599
    c = csid - 64
    return bytes(((fmt << 6) | 1, c & 0xFF, c >> 8))


def chunk_message(payload: bytes, *, csid: int = 3, type_id: int = T.COMMAND_AMF0,
                  stream_id: int = 0, timestamp: int = 0, fmt: int = 0,
                  chunk_size: int = 128, csid_form: int | None = None,
                  extended: bool | None = None, ext_on_continuation: bool = True,
                  length: int | None = None) -> bytes:
    """One message as chunks with an explicit first header format.

    ``timestamp`` is the header's timestamp field: absolute for fmt 0, the delta for fmt
    1/2; for fmt 3 (no fields) it is only used as the extended value when ``extended``.
    ``extended`` forces the 0xFFFFFF + 4-byte form (default: when the value needs it).
    Continuation chunks are fmt 3 and repeat the extended value unless
    ``ext_on_continuation`` is False (the old-encoder quirk). ``length`` overrides the
    declared message length (for lying headers).
    """
    if extended is None:
        extended = timestamp >= 0xFFFFFF
    length = len(payload) if length is None else length
    head = bytearray(basic_header(fmt, csid, form=csid_form))
    ext = timestamp.to_bytes(4, "big") if extended else b""
    if fmt <= 2:
        head += (0xFFFFFF if extended else timestamp).to_bytes(3, "big")
    if fmt <= 1:
        head += length.to_bytes(3, "big") + bytes((type_id,))
    if fmt == 0:
        head += stream_id.to_bytes(4, "little")
    head += ext
    out = bytearray(head)
    out += payload[:chunk_size]
    cont = basic_header(3, csid, form=csid_form) + (ext if ext_on_continuation else b"")
    for off in range(chunk_size, len(payload), chunk_size):
        out += cont
        out += payload[off:off + chunk_size]
    return bytes(out)


# -- a client session -------------------------------------------------------------------------


class Client:
    """Builds a client's wire bytes: handshake, then messages chunked with fmt 0 (first on
    a csid) and fmt 1 afterwards, with the client's chunk size.

    Methods return ``bytes``; concatenate them or feed them one by one.
    """

    def __init__(self, *, chunk_size: int = 128, seed: int = 1) -> None:
        self.chunk_size = chunk_size
        self.seed = seed
        self._last_ts: dict[int, tuple[int, int]] = {}  # csid -> (stream_id, timestamp)
        self.c1: bytes | None = None

    # handshake
    def c0c1(self, *, digest: bool = False, scheme: int = 0) -> bytes:
        """C0 + a plain or digest C1 (remembered in ``self.c1``)."""
        self.c1 = c1_digest(scheme=scheme, seed=self.seed) if digest else c1_plain(seed=self.seed)
        return c0() + self.c1

    @staticmethod
    def c2(server_output: bytes) -> bytes:
        """C2 answering the server's S0+S1+S2: an echo of S1 (§5.2.4; not validated)."""
        return split_handshake(server_output)[1]

    # chunking
    def message(self, type_id: int, payload: bytes, *, stream_id: int = 0,
                timestamp: int = 0, csid: int = 3) -> bytes:
        """One message: fmt 0 when new on ``csid`` (or on another stream, or going back in
        time), else fmt 1 with the timestamp delta."""
        prev = self._last_ts.get(csid)
        self._last_ts[csid] = (stream_id, timestamp)
        if prev is None or prev[0] != stream_id or timestamp < prev[1]:
            return chunk_message(payload, csid=csid, type_id=type_id, stream_id=stream_id,
                                 timestamp=timestamp, fmt=0, chunk_size=self.chunk_size)
        return chunk_message(payload, csid=csid, type_id=type_id, timestamp=timestamp - prev[1],
                             fmt=1, chunk_size=self.chunk_size)

    def set_chunk_size(self, size: int) -> bytes:
        """Set Chunk Size (sent with the old size), then switch to ``size``."""
        out = self.message(T.SET_CHUNK_SIZE, size.to_bytes(4, "big"), csid=2)
        self.chunk_size = size
        return out

    def window_ack_size(self, size: int) -> bytes:
        return self.message(T.WINDOW_ACK_SIZE, size.to_bytes(4, "big"), csid=2)

    def user_control(self, event: int, value: int, extra: int | None = None) -> bytes:
        return self.message(T.USER_CONTROL, m.user_control(event, value, extra), csid=2)

    def command(self, name: str, tid: float, obj: Any = None, *args: Any,
                stream_id: int = 0, csid: int | None = None, amf3: bool = False) -> bytes:
        """An AMF0 command (type 20), or AMF3 command (type 17, leading 0 byte)."""
        body = amf0.encode_all((name, float(tid), obj, *args))
        if csid is None:
            csid = 3 if stream_id == 0 else 8
        if amf3:
            return self.message(T.COMMAND_AMF3, b"\x00" + body, stream_id=stream_id, csid=csid)
        return self.message(T.COMMAND_AMF0, body, stream_id=stream_id, csid=csid)

    # NetConnection / NetStream commands as OBS and FFmpeg send them
    def connect(self, tid: float = 1, *, app: str = "live",
                tc_url: str = "rtmp://localhost/live", **props: Any) -> bytes:
        obj = {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
               "swfUrl": tc_url, "tcUrl": tc_url}
        obj.update(props)
        return self.command("connect", tid, obj)

    def release_stream(self, name: str, tid: float = 2) -> bytes:
        return self.command("releaseStream", tid, None, name)

    def fc_publish(self, name: str, tid: float = 3) -> bytes:
        return self.command("FCPublish", tid, None, name)

    def create_stream(self, tid: float = 4) -> bytes:
        return self.command("createStream", tid, None)

    def publish(self, stream_id: int, name: str, tid: float = 5, kind: str = "live") -> bytes:
        return self.command("publish", tid, None, name, kind, stream_id=stream_id)

    def play(self, stream_id: int, name: str, tid: float = 5, start: float = -2000) -> bytes:
        return self.command("play", tid, None, name, start, stream_id=stream_id)

    def fc_unpublish(self, name: str, tid: float = 6) -> bytes:
        return self.command("FCUnpublish", tid, None, name)

    def delete_stream(self, stream_id: int, tid: float = 7) -> bytes:
        return self.command("deleteStream", tid, None, float(stream_id))

    def close_stream(self, stream_id: int) -> bytes:
        return self.command("closeStream", 0, None, stream_id=stream_id)

    def set_data_frame(self, stream_id: int, metadata: dict, *, timestamp: int = 0) -> bytes:
        """``@setDataFrame("onMetaData", ECMA array)`` on csid 4 as OBS sends it."""
        body = amf0.encode_all(("@setDataFrame", "onMetaData", EcmaArray(metadata)))
        return self.message(T.DATA_AMF0, body, stream_id=stream_id, timestamp=timestamp, csid=4)

    def video(self, stream_id: int, timestamp: int, payload: bytes, *, csid: int = 6) -> bytes:
        return self.message(T.VIDEO, payload, stream_id=stream_id, timestamp=timestamp, csid=csid)

    def audio(self, stream_id: int, timestamp: int, payload: bytes, *, csid: int = 4) -> bytes:
        return self.message(T.AUDIO, payload, stream_id=stream_id, timestamp=timestamp, csid=csid)


OBS_CONNECT_PROPS = {
    "app": "live",
    "type": "nonprivate",
    "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
    "swfUrl": "rtmp://localhost/live",
    "tcUrl": "rtmp://localhost/live",
    "fourCcList": ["av01", "vp09", "hvc1"],
    "capabilities": 15.0,
    "audioCodecs": 3575.0,
    "videoCodecs": 252.0,
    "videoFunction": 1.0,
    "fpad": False,
    "pageUrl": amf0.UNDEFINED,
    "objectEncoding": 0.0,
}

OBS_METADATA = {
    "duration": 0.0, "fileSize": 0.0, "width": 1280.0, "height": 720.0,
    "videocodecid": 7.0, "videodatarate": 2500.0, "framerate": 30.0,
    "audiocodecid": 10.0, "audiodatarate": 160.0, "audiosamplerate": 48000.0,
    "audiosamplesize": 16.0, "audiochannels": 2.0, "stereo": True, "2.1": False,
    "3.1": False, "4.0": False, "4.1": False, "5.1": False, "7.1": False,
    "encoder": "obs-output module (libobs version 30.0.0)",
}


# -- reading the server's output --------------------------------------------------------------


@dataclass
class ServerReader:
    """Parses what the server sent (after the handshake) with the chunk reader in client
    mode; Set Chunk Size from the server is applied by the reader."""

    reader: ChunkReader = field(default_factory=lambda: ChunkReader(max_message_size=1 << 24))
    messages: list[Message] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Message]:
        msgs = self.reader.receive_data(data)
        self.messages.extend(msgs)
        return msgs


def decode_command(msg: Message) -> m.Command:
    """The AMF0 command inside a server message of type 20."""
    assert msg.type_id == T.COMMAND_AMF0, msg
    return m.parse_command(msg.payload)


def describe(msgs: Iterable[Message]) -> list[tuple]:
    """Compact summary of server messages for assertions: commands as
    ``("cmd", name, tid, stream_id, code-or-None)``, data as ``("data", name, stream_id)``,
    control as ``(type name, value)``."""
    out: list[tuple] = []
    for msg in msgs:
        t = msg.type_id
        if t == T.COMMAND_AMF0:
            cmd = decode_command(msg)
            info = cmd.arguments[0] if cmd.arguments else None
            code = info.get("code") if isinstance(info, dict) else None
            out.append(("cmd", cmd.name, cmd.transaction_id, msg.stream_id, code))
        elif t == T.DATA_AMF0:
            name, _ = m.parse_data(msg.payload)
            out.append(("data", name, msg.stream_id))
        elif t == T.USER_CONTROL:
            uc = m.parse_user_control(msg.payload)
            out.append((UC(uc.event).name, uc.value))
        elif t in (T.SET_CHUNK_SIZE, T.WINDOW_ACK_SIZE, T.ACK):
            out.append((T(t).name, int.from_bytes(msg.payload[:4], "big")))
        elif t == T.SET_PEER_BANDWIDTH:
            out.append((T(t).name, int.from_bytes(msg.payload[:4], "big"), msg.payload[4]))
        else:
            out.append((T(t).name if t in T._value2member_map_ else t, msg.stream_id,
                        msg.timestamp, len(msg.payload)))
    return out
