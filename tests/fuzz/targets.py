"""Fuzz targets: one function per parser that takes untrusted bytes, and its seeds.

Each target's ``run(data)`` feeds ``data`` to the real parser and swallows only the
package's typed errors (the documented outcomes of bad input). Anything else escaping
``run`` is a bug. The same targets drive the bounded hypothesis run in CI
(``tests/fuzz/test_targets.py``) and the long coverage-guided atheris run
(``benchmarks/fuzz.py``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Callable

from mediasrv.config import ConfigError, load_config
from mediasrv.hls.reload import BadReloadQuery, parse_reload_query
from mediasrv.live.chat import ChatRefused, RoomRules, Speaker, clean_text
from mediasrv.media import aac, av1, avc, flv, hevc, track_from_config, vp9
from mediasrv.media.errors import MediaError
from mediasrv.media.ingest import FlvIngest
from mediasrv.media.types import Codec
from mediasrv.rtmp import amf0, amf3
from mediasrv.rtmp import messages as m
from mediasrv.rtmp.chunk import ChunkReader
from mediasrv.rtmp.connection import RtmpConnection
from mediasrv.rtmp.errors import RemoteProtocolError
from mediasrv.rtmp.events import ConnectRequest, PlayRequest, PublishRequest
from mediasrv.rtmp.handshake import HANDSHAKE_SIZE, HandshakeState, ServerHandshake


@dataclass(frozen=True)
class Target:
    """A parser under fuzz: ``run`` raises only on a bug; ``seeds`` are valid inputs."""

    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    #: Largest input worth generating (bytes).
    max_size: int = 512


def _pieces(data: bytes) -> list[bytes]:
    """Split ``data`` at positions chosen by its first byte, so the same input also tests
    the parser's resumption when a read stops mid-structure (TCP delivers any split)."""
    if not data:
        return [data]
    step = data[0] % 7 + 1
    body = data[1:]
    if step == 1:
        return [body]
    size = max(1, len(body) // step)
    return [body[i:i + size] for i in range(0, len(body), size)] or [b""]


def _seed_random(n: int) -> bytes:
    return bytes((i * 73 + 11) & 0xFF for i in range(n))


# --- RTMP -----------------------------------------------------------------------------


def run_handshake(data: bytes) -> None:
    hs = ServerHandshake(random_bytes=_seed_random)
    try:
        for piece in _pieces(data):
            rest = hs.receive_data(piece)
            hs.data_to_send()
            if rest is not None:
                assert hs.state is HandshakeState.DONE
                return
    except RemoteProtocolError:
        pass


@functools.cache
def _client():
    from tests.rtmp.factories import Client

    return Client


def seeds_handshake() -> list[bytes]:
    client = _client()()
    plain = client.c0c1()
    digest = _client()().c0c1(digest=True)
    return [b"\x01" + plain + plain[1:], b"\x02" + digest + digest[1:HANDSHAKE_SIZE + 1] + b"\x02\x00"]


def run_chunk_stream(data: bytes) -> None:
    reader = ChunkReader(max_message_size=64 * 1024)
    try:
        for piece in _pieces(data):
            for msg in reader.receive_data(piece):
                assert len(msg.payload) <= 64 * 1024
    except RemoteProtocolError:
        pass


def _session_bytes() -> bytes:
    client = _client()()
    return (client.connect() + client.set_chunk_size(4096) + client.release_stream("key")
            + client.fc_publish("key") + client.create_stream() + client.publish(1, "key")
            + client.set_data_frame(1, {"width": 320.0, "height": 240.0, "videocodecid": 7.0})
            + client.video(1, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x02\x68\xee")
            + client.audio(1, 0, b"\xaf\x00\x12\x10") + client.video(1, 33, b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41")
            + client.fc_unpublish("key") + client.delete_stream(1))


def seeds_chunk_stream() -> list[bytes]:
    session = _session_bytes()
    return [b"\x01" + session[:400], b"\x04" + session[:300]]


def run_connection(data: bytes) -> None:
    """A whole connection (handshake, then chunks) with an application that accepts
    every request, as the RTMP server would."""
    conn = RtmpConnection(random_bytes=_seed_random, max_message_size=64 * 1024)
    # The handshake at once, then 16-byte reads: the application answers a request
    # before the next one is complete, as the server does between reads.
    cut = 1 + 2 * HANDSHAKE_SIZE
    pieces = [data[:cut]] + [data[i:i + 16] for i in range(cut, len(data), 16)]
    try:
        for piece in pieces:
            for event in conn.receive_data(piece):
                if isinstance(event, ConnectRequest):
                    conn.accept_connect()
                elif isinstance(event, PublishRequest):
                    conn.accept_publish(event.stream_id)
                elif isinstance(event, PlayRequest):
                    conn.accept_play(event.stream_id)
                    conn.send_video(event.stream_id, 0, b"\x17\x00")
            conn.data_to_send()
    except RemoteProtocolError:
        pass


def seeds_connection() -> list[bytes]:
    client = _client()()
    c0c1 = client.c0c1()
    # The plain handshake's C2 is not validated: any 1536 bytes complete it.
    return [c0c1 + bytes(HANDSHAKE_SIZE) + _session_bytes()]


def run_amf0(data: bytes) -> None:
    try:
        amf0.decode_all(data)
    except amf0.AmfError:
        pass


def run_amf3(data: bytes) -> None:
    try:
        amf3.decode_all(data)
    except amf0.AmfError:
        pass


def run_rtmp_messages(data: bytes) -> None:
    """Message bodies: commands and data in AMF0 and AMF3 framing, user control, peer
    bandwidth and aggregates (the first byte picks the parser)."""
    if not data:
        return
    kind, body = data[0] % 7, data[1:]
    try:
        if kind == 0:
            m.parse_command(body)
        elif kind == 1:
            m.parse_command(body, amf3=True)
        elif kind == 2:
            m.parse_data(body)
        elif kind == 3:
            m.parse_data(body, amf3=True)
        elif kind == 4:
            m.parse_user_control(body)
        elif kind == 5:
            m.parse_set_peer_bandwidth(body)
        else:
            for sub in m.split_aggregate(body, 1000):
                assert sub.timestamp >= 0
    except RemoteProtocolError:
        pass


def seeds_amf0() -> list[bytes]:
    return [amf0.encode_all(["connect", 1.0, {"app": "live", "tcUrl": "rtmp://x/live", "n": None},
                             amf0.EcmaArray({"width": 1280.0, "ok": True}), [1.0, "a"]])]


def seeds_amf3() -> list[bytes]:
    return [amf3.encode_all(["connect", 1.0, {"app": "live", "list": [1, 2, "x"]}, 7, True, None])]


def seeds_rtmp_messages() -> list[bytes]:
    cmd = amf0.encode_all(["publish", 5.0, None, "key", "live"])
    return [b"\x00" + cmd, b"\x01\x00" + cmd, b"\x02" + amf0.encode_all(["@setDataFrame", "onMetaData", {"a": 1.0}]),
            b"\x04" + m.user_control(m.UserControlEvent.SET_BUFFER_LENGTH, 1, 3000),
            b"\x05" + m.set_peer_bandwidth(2500000),
            b"\x06" + m.build_aggregate([(9, 0, b"\x17\x01\x00\x00\x00"), (8, 20, b"\xaf\x01\x21")], 1)]


# --- FLV and Enhanced RTMP tags, codec configuration records ---------------------------


@functools.cache
def _media_seeds() -> dict[str, list[bytes]]:
    from tests.media import samples

    out: dict[str, list[bytes]] = {"video": [], "audio": [], "h264": [], "hevc": [], "av1": [], "vp9": [], "aac": []}
    for name in ("h264", "hevc", "av1", "vp9"):
        if samples.has_encoder(name):
            s = samples.video(name, frames=3, audio_frames=2)
            out["video"] += [t.body[:160] for t in s.video_tags[:3]]
            out["audio"] += [t.body[:48] for t in s.audio_tags[:2]]
            out[name].append(s.video_config)
    out["aac"].append(samples.audio().audio_config)
    # Enhanced RTMP v2: multitrack (one track; many tracks, one codec) and ModEx
    # (TimestampOffsetNano), hand-built after the E-RTMP v2 spec's layouts.
    out["video"] += [
        b"\x96" + b"\x00" + b"hvc1" + b"\x00" + b"\x00\x00\x00" + b"\x00\x00\x00\x02\x01\x02",
        b"\x96" + b"\x11" + b"avc1" + b"\x00" + b"\x00\x00\x05" + b"\x00\x00\x00\x01\x65" + b"\x01\x00\x00\x02\x41\x01",
        b"\x97" + b"\x02\x00\x01\x86" + b"\x11" + b"\x00\x00\x00" + b"\x00\x00\x00\x01\x65",
    ]
    out["audio"] += [b"\x90mp4a\x12\x10", b"\x95\x11mp4a\x00\x00\x00\x02\x21\x00", b"\x97\x02\x00\x00\x01\x01mp4a\x21"]
    return out


def _media(fn: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        try:
            fn(data)
        except MediaError:
            pass

    run.__name__ = getattr(fn, "__name__", "run")
    return run


def _ingest(data: bytes) -> None:
    """A sequence of tags into one ``FlvIngest``: [kind/len byte pairs] then bodies."""
    ingest = FlvIngest()
    pos, ts = 0, 0
    while pos + 2 <= len(data):
        head, size = data[pos], data[pos + 1]
        body = data[pos + 2:pos + 2 + size]
        pos += 2 + size
        ts = (ts + (head >> 1) * 17) & 0xFFFFFFFF
        try:
            unit = ingest.video(ts, body) if head & 1 else ingest.audio(ts, body)
        except MediaError:
            continue
        if unit is not None:
            assert unit.pts >= unit.dts and unit.data


def seeds_ingest() -> list[bytes]:
    seeds = _media_seeds()
    out = bytearray()
    for body in seeds["video"][:3]:
        out += bytes((1, min(255, len(body)))) + body[:255]
    for body in seeds["audio"][:2]:
        out += bytes((2, min(255, len(body)))) + body[:255]
    return [bytes(out)]


def _config_record(codec: Codec, parsers: list[Callable[[bytes], object]]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        for parse in parsers:
            _media(parse)(data)
        _media(lambda d: track_from_config(codec, d))(data)

    return run


# --- LL-HLS query, config loader, chat, images -----------------------------------------


def run_ll_hls_query(data: bytes) -> None:
    """The query string of a media playlist request, decoded as aiohttp decodes it."""
    from yarl import URL

    text = data.decode("latin-1")
    try:
        query = URL.build(path="/live/s/source/index.m3u8", query_string=text, encoded=True).query
    except ValueError:
        return  # aiohttp answers 400 before any handler runs
    try:
        directives = parse_reload_query(query)
    except BadReloadQuery:
        return
    assert directives.msn is None or 0 <= directives.msn < 10**10
    assert directives.part is None or (directives.msn is not None and 0 <= directives.part < 10**10)


def seeds_ll_hls_query() -> list[bytes]:
    return [b"_HLS_msn=12&_HLS_part=3", b"_HLS_msn=7&_HLS_skip=YES", b"_HLS_skip=v2", b"_HLS_part=1", b"a=%20&_HLS_msn=%31"]


_CONFIG_DIR = tempfile.mkdtemp(prefix="mediasrv-fuzz-config-")


def run_config(data: bytes) -> None:
    """YAML text, then ``--set`` overrides, separated by NUL bytes, through ``load_config``
    (the file is read from disk as the command line does)."""
    yaml_text, *overrides = data.split(b"\x00")
    path = os.path.join(_CONFIG_DIR, f"c{os.getpid()}.yaml")
    with open(path, "wb") as f:
        f.write(yaml_text)
    try:
        load_config(path, [o.decode("utf-8", "replace") for o in overrides[:8]])
    except ConfigError:
        pass


def seeds_config() -> list[bytes]:
    return [
        b"rtmp:\n  listen: 127.0.0.1:1935\nhls:\n  segment_duration: 2\n  window: 6\nauth:\n  mode: keys\n  keys:\n    s3cret: alice\n",
        b"transcode:\n  enabled: true\n  ladder:\n    - {name: '720p', height: 720, video_bitrate: 2800000}\n"
        b"\x00hls.low_latency=false\x00chat.rate=5\x00auth.keys.k=bob",
        b"gifts:\n  currency: EUR\n  catalogue:\n    - {id: rose, name: Rose, price: 10}\nhttp:\n  trusted_proxies: [10.0.0.0/8]\n",
    ]


def run_chat_text(data: bytes) -> None:
    """A chat message's text through cleaning and the room rules (word filter on)."""
    text = data.decode("utf-8", "replace")
    rules = RoomRules(server_words=("bad word", "spam"), max_chars=64)
    try:
        cleaned = clean_text(text, max_chars=64)
        assert cleaned and len(cleaned) <= 64 and cleaned == cleaned.strip()
    except ChatRefused:
        pass
    try:
        rules.check(Speaker(1), text, 0.0)
    except ChatRefused:
        pass


def seeds_chat_text() -> list[bytes]:
    return ["hello  world\t!".encode(), "BÁD  word".encode(), "\u202eevil\u200b".encode(), b"x" * 70]


class _ChatHarness:
    """A chat service with moderation on a real SQLite store: a creator's room with the
    creator, a viewer and an anonymous member connected."""

    def __init__(self) -> None:
        from mediasrv.config import Config
        from mediasrv.server.chat import ChatService
        from mediasrv.server.moderation import ModerationService
        from mediasrv.store import SqliteStore

        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp(prefix="mediasrv-fuzz-chat-")
        store = SqliteStore(os.path.join(self.dir, "mediasrv.db"))
        self.alice = store.create_user("alice", "Alice", "x", "creator", 0.0)
        self.bob = store.create_user("bob", "Bob", "x", "viewer", 0.0)
        config = Config()
        self.now = [1_000_000.0]
        self.chat = ChatService(config.chat, clock=lambda: self.now[0])
        ModerationService(store, config, self.chat, clock=lambda: self.now[0]).attach()
        self.room = self.chat.room("alice", owner_id=self.alice.id)

        async def join():
            members = []
            for user in (self.alice, self.bob, None):
                await self.chat.admit(self.room, user)
                members.append(self.chat.join(self.room, user))
            return members

        self.members = self.loop.run_until_complete(join())

    def handle(self, who: int, frame: str) -> None:
        member = self.members[who % 3]
        if member.closed is not None:  # a slow member was dropped: reconnect it
            self.chat.leave(self.room, member)
            self.members[who % 3] = member = self.chat.join(self.room, member.user)
        self.loop.run_until_complete(self.chat.handle(self.room, member, frame))
        self.now[0] += 0.7
        for m_ in self.members:
            for f in list(m_._frames):
                assert isinstance(json.loads(f), dict)
            m_._frames.clear()


@functools.cache
def chat_harness() -> _ChatHarness:
    return _ChatHarness()


def run_chat_requests(data: bytes) -> None:
    """WebSocket text frames (NUL-separated; the first byte of each picks the member:
    creator, viewer, anonymous) through ``ChatService.handle`` with moderation attached.
    Refusals go back to the member as error frames; nothing may escape."""
    harness = chat_harness()
    for raw in data.split(b"\x00")[:6]:
        if not raw:
            continue
        harness.handle(raw[0], raw[1:].decode("utf-8", "replace"))


def seeds_chat_requests() -> list[bytes]:
    frames = [
        b"\x01" + json.dumps({"type": "message", "text": "hi there"}).encode(),
        b"\x00" + json.dumps({"type": "slow_mode", "seconds": 5}).encode(),
        b"\x00" + json.dumps({"type": "timeout", "user": "bob", "minutes": 1, "reason": "x"}).encode(),
        b"\x00" + json.dumps({"type": "ban", "user": "bob"}).encode(),
        b"\x00" + json.dumps({"type": "unban", "user": "bob"}).encode(),
        b"\x01" + json.dumps({"type": "report", "user": "alice", "reason": "spam"}).encode(),
        b"\x00" + json.dumps({"type": "pin", "id": "00"}).encode(),
        b"\x02" + json.dumps({"type": "message", "text": "anon"}).encode(),
    ]
    return [b"\x00".join(frames[i:i + 3]) for i in range(0, len(frames), 3)]


def run_cover_upload(data: bytes) -> None:
    """An uploaded cover through the same checks and re-encoding as ``PUT /api/me/cover``."""
    from mediasrv.server.images import ImageError, reencode_cover

    try:
        image = reencode_cover(data, max_bytes=256 * 1024, max_pixels=512 * 512)
    except ImageError as error:
        assert 400 <= error.status < 500
    else:
        assert image.jpeg[:2] == b"\xff\xd8"


@functools.cache
def _images() -> list[bytes]:
    import io

    import av
    import numpy as np

    out = []
    for fmt, codec in (("image2", "mjpeg"), ("image2", "png"), ("webp", "libwebp")):
        buf = io.BytesIO()
        try:
            container = av.open(buf, "w", format=fmt if fmt != "image2" else "image2pipe")
            stream = container.add_stream(codec, rate=1)
        except (av.FFmpegError, ValueError):
            continue
        stream.width, stream.height = 16, 8
        stream.pix_fmt = {"mjpeg": "yuvj420p", "png": "rgb24", "libwebp": "yuv420p"}[codec]
        frame = av.VideoFrame.from_ndarray(np.full((8, 16, 3), 90, dtype=np.uint8), format="rgb24")
        frame = frame.reformat(format=stream.pix_fmt)
        for packet in stream.encode(frame) + stream.encode(None):
            container.mux(packet)
        container.close()
        out.append(buf.getvalue())
    return out


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("rtmp_handshake", run_handshake, seeds_handshake, 2 * HANDSHAKE_SIZE + 64),
    Target("rtmp_chunk_stream", run_chunk_stream, seeds_chunk_stream, 1024),
    Target("rtmp_connection", run_connection, seeds_connection, 4096),
    Target("rtmp_messages", run_rtmp_messages, seeds_rtmp_messages, 512),
    Target("amf0", run_amf0, seeds_amf0, 512),
    Target("amf3", run_amf3, seeds_amf3, 512),
    Target("flv_video_tag", _media(flv.parse_video_tag), lambda: _media_seeds()["video"], 256),
    Target("flv_audio_tag", _media(flv.parse_audio_tag), lambda: _media_seeds()["audio"], 96),
    Target("flv_ingest", _ingest, seeds_ingest, 1024),
    Target("avcC", _config_record(Codec.H264, [avc.parse_avcc, lambda d: avc.parse_avcc(d).parsed_sps()]),
           lambda: _media_seeds()["h264"] or [b"\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x02\x68\xee"], 256),
    Target("hvcC", _config_record(Codec.HEVC, [hevc.parse_hvcc, lambda d: hevc.parse_hvcc(d).parsed_sps()]),
           lambda: _media_seeds()["hevc"] or [b"\x01" + bytes(22)], 256),
    Target("av1C", _config_record(Codec.AV1, [av1.parse_av1c]),
           lambda: _media_seeds()["av1"] or [b"\x81\x08\x0c\x00\x0a\x0b\x00\x00\x00\x24\xc4\xff\xdf\x00\x68\x02"], 128),
    Target("vpcC", _config_record(Codec.VP9, [vp9.parse_vpcc]),
           lambda: _media_seeds()["vp9"] or [b"\x01\x00\x00\x00\x00\x0a\x80\x02\x02\x02\x00\x00"], 64),
    Target("AudioSpecificConfig", _config_record(Codec.AAC, [aac.parse_asc]), lambda: _media_seeds()["aac"], 32),
    Target("ll_hls_query", run_ll_hls_query, seeds_ll_hls_query, 128),
    Target("config", run_config, seeds_config, 1024),
    Target("chat_text", run_chat_text, seeds_chat_text, 512),
    Target("chat_requests", run_chat_requests, seeds_chat_requests, 1024),
    Target("cover_upload", run_cover_upload, _images, 2048),
]}


def run_selftest(data: bytes) -> None:
    """A target with a planted bug (any input holding the byte 0xAB), so a test can check
    that the runner reports crashes. Only registered with MEDIASRV_FUZZ_SELFTEST=1."""
    if b"\xab" in data:
        raise RuntimeError("planted bug found")


if os.environ.get("MEDIASRV_FUZZ_SELFTEST"):
    TARGETS["selftest"] = Target("selftest", run_selftest, lambda: [b"bu"], 16)
