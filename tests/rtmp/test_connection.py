"""RtmpConnection: whole sessions as OBS, FFmpeg and players run them, byte by byte."""

from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.rtmp import amf0
from mediasrv.rtmp import messages as m
from mediasrv.rtmp.amf0 import UNDEFINED, EcmaArray
from mediasrv.rtmp.chunk import Message
from mediasrv.rtmp.connection import ConnectionState, RtmpConnection, StreamState
from mediasrv.rtmp.errors import LocalProtocolError, RemoteProtocolError
from mediasrv.rtmp.events import (
    AudioData,
    ConnectRequest,
    DataMessage,
    Event,
    HandshakeComplete,
    PingResponse,
    PlayRequest,
    PlayStop,
    PublishRequest,
    Unpublish,
    VideoData,
)
from mediasrv.rtmp.messages import MessageType as T
from mediasrv.rtmp.messages import UserControlEvent as UC

from .factories import (
    OBS_CONNECT_PROPS,
    OBS_METADATA,
    Client,
    ServerReader,
    chunk_message,
    decode_command,
    describe,
    seeded_random,
    split_handshake,
    verify_digest_s1s2,
)

AVC_SEQ = b"\x17\x00\x00\x00\x00" + bytes.fromhex("0164001fffe1001967640028acd9")
AAC_SEQ = b"\xaf\x00\x11\x90"
KEYFRAME = b"\x17\x01\x00\x00\x00" + b"\x00\x00\x03\x00" + bytes(range(200)) * 6
INTER = b"\x27\x01\x00\x00\x21" + bytes(range(150))
AAC = b"\xaf\x01" + bytes(range(40))


class Harness:
    """A connection plus a scripted client and an application that accepts everything
    (unless told otherwise)."""

    def __init__(self, *, digest: bool = False, seed: int = 3, **kw) -> None:
        self.conn = RtmpConnection(random_bytes=seeded_random(seed), **kw)
        self.client = Client()
        self.digest = digest
        self.reader = ServerReader()
        self.events: list[Event] = []
        self.raw_out = bytearray()
        self._handshake_done = False

    def feed(self, data: bytes, splitter: Callable[[bytes], list[bytes]] | None = None) -> list[Event]:
        events: list[Event] = []
        for piece in (splitter(data) if splitter else [data]):
            events += self.conn.receive_data(piece)
        self.events += events
        return events

    def out(self) -> list[Message]:
        data = self.conn.data_to_send()
        self.raw_out += data
        if not self._handshake_done:
            return []
        return self.reader.feed(data)

    def handshake(self, splitter=None) -> list[Event]:
        assert self.feed(self.client.c0c1(digest=self.digest), splitter) == []
        s = self.conn.data_to_send()
        self.raw_out += s
        self.s0s1s2 = s
        self._handshake_done = True
        return self.feed(self.client.c2(s), splitter)

    def connected(self, splitter=None, **props) -> None:
        self.handshake(splitter)
        self.feed(self.client.connect(**props), splitter)
        self.conn.accept_connect()
        self.out()

    def publishing(self, name: str = "key", splitter=None) -> int:
        self.connected(splitter)
        self.feed(self.client.release_stream(name) + self.client.fc_publish(name)
                  + self.client.create_stream(), splitter)
        self.feed(self.client.publish(1, name), splitter)
        assert self.conn.accept_publish(1)
        self.out()
        return 1


# -- the sessions ------------------------------------------------------------------------------


def obs_phases(client: Client, digest: bool = False) -> list[bytes]:
    """What OBS sends, phase by phase (each phase waits for the server's answer).

    Built in sending order, since the client's header compression depends on it. The
    second phase follows C2, which depends on S1.
    """
    phases = [
        client.c0c1(digest=digest),
        # OBS: right after C2, connect and Set Chunk Size 4096 in one write
        client.command("connect", 1, OBS_CONNECT_PROPS) + client.set_chunk_size(4096),
        client.window_ack_size(2_500_000) + client.release_stream("key")
        + client.fc_publish("key") + client.create_stream(),
        client.publish(1, "key?token=abc"),
    ]
    media = [client.set_data_frame(1, OBS_METADATA),
             client.video(1, 0, AVC_SEQ), client.audio(1, 0, AAC_SEQ),
             client.video(1, 0, KEYFRAME), client.audio(1, 21, AAC)]
    for i in range(1, 6):
        media.append(client.video(1, i * 33, INTER))
        media.append(client.audio(1, 21 + i * 21, AAC))
    phases.append(b"".join(media))
    phases.append(client.fc_unpublish("key") + client.delete_stream(1))
    return phases


def run_obs(splitter=None, digest=False) -> tuple[list[Event], bytes]:
    conn = RtmpConnection(random_bytes=seeded_random(3))
    client = Client(chunk_size=128)
    phases = obs_phases(client, digest)
    events: list[Event] = []
    out = bytearray()

    def feed(data: bytes) -> None:
        for piece in (splitter(data) if splitter else [data]):
            for ev in conn.receive_data(piece):
                events.append(ev)
                # the application: accept everything as soon as it is asked
                if isinstance(ev, ConnectRequest):
                    conn.accept_connect()
                elif isinstance(ev, PublishRequest):
                    conn.accept_publish(ev.stream_id)

    feed(phases[0])
    out += conn.data_to_send()
    feed(client.c2(bytes(out)) + phases[1])
    for phase in phases[2:]:
        out += conn.data_to_send()
        feed(phase)
    out += conn.data_to_send()
    return events, bytes(out)


def test_obs_publish_session():
    events, out = run_obs()
    _, s1, s2, rest = split_handshake(out)
    assert events[0] == HandshakeComplete(digest=False)
    connect = events[1]
    assert isinstance(connect, ConnectRequest)
    assert (connect.app, connect.tc_url, connect.transaction_id) == ("live", "rtmp://localhost/live", 1.0)
    assert connect.properties["fourCcList"] == ["av01", "vp09", "hvc1"]
    assert events[2] == PublishRequest(1, 5.0, "key", "token=abc", "live")
    meta = events[3]
    assert meta == DataMessage(1, 0, "onMetaData", [EcmaArray(OBS_METADATA)])
    assert type(meta.values[0]) is EcmaArray
    media = events[4:-1]
    assert media[:4] == [VideoData(1, 0, AVC_SEQ), AudioData(1, 0, AAC_SEQ),
                         VideoData(1, 0, KEYFRAME), AudioData(1, 21, AAC)]
    assert [e.timestamp for e in media if isinstance(e, VideoData)][3:] == [66, 99, 132, 165]
    assert len(media) == 14
    assert events[-1] == Unpublish(1)

    msgs = ServerReader().feed(rest)
    assert describe(msgs) == [
        ("WINDOW_ACK_SIZE", 2_500_000),
        ("SET_PEER_BANDWIDTH", 2_500_000, 2),
        ("SET_CHUNK_SIZE", 4096),
        ("cmd", "_result", 1.0, 0, "NetConnection.Connect.Success"),
        ("cmd", "_result", 2.0, 0, None),  # releaseStream
        ("cmd", "_result", 3.0, 0, None),  # FCPublish
        ("cmd", "onFCPublish", 0.0, 0, "NetStream.Publish.Start"),
        ("cmd", "_result", 4.0, 0, None),  # createStream
        ("STREAM_BEGIN", 1),
        ("cmd", "onStatus", 0.0, 1, "NetStream.Publish.Start"),
        ("cmd", "onStatus", 0.0, 1, "NetStream.Unpublish.Success"),
        ("cmd", "_result", 6.0, 0, None),  # FCUnpublish
    ]
    result = decode_command(msgs[3])
    props, info = result.command_object, result.arguments[0]
    assert props == {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0, "mode": 1.0,
                     "fourCcList": ["avc1", "hvc1", "av01", "vp09", "mp4a"]}
    assert info == {"level": "status", "code": "NetConnection.Connect.Success",
                    "description": "Connection succeeded.", "objectEncoding": 0.0}
    assert decode_command(msgs[7]).arguments == [1.0]
    publish_start = decode_command(msgs[9]).arguments[0]
    assert publish_start == {"level": "status", "code": "NetStream.Publish.Start",
                             "description": "key is now published.", "details": "key"}
    # the server's own chunk size applies after its Set Chunk Size
    assert msgs[2].csid == 2 and msgs[3].csid == 3 and msgs[9].csid == 5


def test_obs_session_with_digest_handshake():
    events, out = run_obs(digest=True)
    assert events[0] == HandshakeComplete(digest=True)
    plain_events, _ = run_obs()
    assert events[1:] == plain_events[1:]
    client = Client()
    c1 = client.c0c1(digest=True)[1:]
    _, s1, s2, _ = split_handshake(out)
    verify_digest_s1s2(c1, s1, s2)


def bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def test_obs_session_one_byte_at_a_time():
    assert run_obs(bytewise) == run_obs()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=40))
def test_obs_session_in_random_splits(sizes):
    def splitter(data: bytes) -> list[bytes]:
        pieces, pos, i = [], 0, 0
        while pos < len(data):
            n = sizes[i % len(sizes)]
            pieces.append(data[pos:pos + n])
            pos += n
            i += 1
        return pieces

    assert run_obs(splitter) == run_obs()


def test_ffmpeg_publish_session():
    """FFmpeg: no fourCcList, Set Chunk Size before its commands, fmt 2/3 compressed
    headers for media of equal size and delta."""
    h = Harness()
    h.handshake()
    c = h.client
    ev = h.feed(c.command("connect", 1, {"app": "live", "flashVer": "FMLE/3.0 (compatible; Lavf61.7.100)",
                                         "tcUrl": "rtmp://127.0.0.1:1935/live", "type": "nonprivate"}))
    assert ev == [ConnectRequest(1.0, "live", "rtmp://127.0.0.1:1935/live", ev[0].properties)]
    h.conn.accept_connect()
    result = decode_command(h.out()[-1])
    assert "fourCcList" not in result.command_object
    h.feed(c.set_chunk_size(4096) + c.release_stream("stream", 2) + c.fc_publish("stream", 3)
           + c.create_stream(4))
    assert describe(h.out())[-1] == ("cmd", "_result", 4.0, 0, None)
    assert h.feed(c.publish(1, "stream", 5)) == [PublishRequest(1, 5.0, "stream", "", "live")]
    h.conn.accept_publish(1)
    h.out()
    wire = (c.set_data_frame(1, {"duration": 0.0, "encoder": "Lavf61.7.100"})
            + chunk_message(AAC_SEQ, csid=4, type_id=8, stream_id=1, timestamp=0, chunk_size=4096)
            + chunk_message(AAC, csid=4, type_id=8, timestamp=23, fmt=1, chunk_size=4096)
            + chunk_message(AAC, csid=4, timestamp=23, fmt=2, chunk_size=4096)
            + chunk_message(AAC, csid=4, fmt=3, chunk_size=4096)  # same size, same delta
            + chunk_message(KEYFRAME, csid=6, type_id=9, stream_id=1, timestamp=0, chunk_size=4096))
    ev = h.feed(wire)
    assert ev[0] == DataMessage(1, 0, "onMetaData", [EcmaArray({"duration": 0.0, "encoder": "Lavf61.7.100"})])
    assert [(type(e).__name__, e.timestamp) for e in ev[1:]] == [
        ("AudioData", 0), ("AudioData", 23), ("AudioData", 46), ("AudioData", 69), ("VideoData", 0)]
    assert h.feed(c.fc_unpublish("stream", 6) + c.delete_stream(1, 7)) == [Unpublish(1)]
    assert h.conn.stream_state(1) is StreamState.DELETED


def test_play_session_like_ffplay():
    h = Harness()
    h.connected()
    c = h.client
    h.feed(c.window_ack_size(5_000_000) + c.create_stream(2))
    assert describe(h.out()) == [("cmd", "_result", 2.0, 0, None)]
    ev = h.feed(c.command("getStreamLength", 3, None, "live1", stream_id=1)
                + c.command("FCSubscribe", 4, None, "live1")
                + c.play(1, "live1?sig=1", 5) + c.user_control(UC.SET_BUFFER_LENGTH, 1, 3000))
    assert ev == [PlayRequest(1, 5.0, "live1", "sig=1")]
    assert describe(h.out()) == [("cmd", "_result", 3.0, 0, None), ("cmd", "_result", 4.0, 0, None)]
    assert h.conn.accept_play(1)
    assert describe(h.out()) == [
        ("STREAM_BEGIN", 1),
        ("cmd", "onStatus", 0.0, 1, "NetStream.Play.Reset"),
        ("cmd", "onStatus", 0.0, 1, "NetStream.Play.Start"),
        ("data", "|RtmpSampleAccess", 1),
    ]
    sample_access = h.reader.messages[-1]
    assert m.parse_data(sample_access.payload) == ("|RtmpSampleAccess", [True, True])

    assert h.conn.send_metadata(1, {"width": 1280.0, "height": 720.0})
    assert h.conn.send_video(1, 0, AVC_SEQ)
    assert h.conn.send_audio(1, 0, AAC_SEQ)
    assert h.conn.send_video(1, 0x1000005, KEYFRAME * 5)  # > chunk size, extended timestamp
    assert h.conn.send_audio(1, 0x1000010, AAC)
    assert h.conn.send_video(1, 2**32 + 7, INTER)  # wraps
    msgs = h.out()
    assert m.parse_data(msgs[0].payload) == ("onMetaData", [EcmaArray({"width": 1280.0, "height": 720.0})])
    assert [(x.csid, x.type_id, x.stream_id, x.timestamp, x.payload) for x in msgs[1:]] == [
        (7, 9, 1, 0, AVC_SEQ), (6, 8, 1, 0, AAC_SEQ), (7, 9, 1, 0x1000005, KEYFRAME * 5),
        (6, 8, 1, 0x1000010, AAC), (7, 9, 1, 7, INTER)]

    assert h.conn.send_status(1, "status", "NetStream.Play.UnpublishNotify", "key is unpublished")
    assert describe(h.out()) == [("cmd", "onStatus", 0.0, 1, "NetStream.Play.UnpublishNotify")]
    assert h.feed(c.close_stream(1) + c.delete_stream(1, 0)) == [PlayStop(1)]
    assert h.conn.send_video(1, 100, INTER) is False
    assert h.out() == []


def test_reject_connect():
    h = Harness()
    h.handshake()
    h.feed(h.client.connect())
    h.conn.reject_connect("Bad app")
    msg = h.out()[-1]
    cmd = decode_command(msg)
    assert (cmd.name, cmd.transaction_id) == ("_error", 1.0)
    assert cmd.arguments[0] == {"level": "error", "code": "NetConnection.Connect.Rejected",
                                "description": "Bad app"}
    assert h.conn.state is ConnectionState.REJECTED
    # whatever the client sends before it hangs up is ignored
    assert h.feed(h.client.create_stream() + h.client.video(1, 0, b"x")) == []
    assert h.out() == []
    with pytest.raises(LocalProtocolError):
        h.conn.accept_connect()


def test_reject_publish_then_publish_again():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream())
    h.feed(h.client.publish(1, "bad"))
    h.out()
    assert h.conn.reject_publish(1, "NetStream.Publish.BadName", "Invalid stream key")
    info = decode_command(h.out()[0]).arguments[0]
    assert info == {"level": "error", "code": "NetStream.Publish.BadName",
                    "description": "Invalid stream key", "details": "bad"}
    assert h.conn.stream_state(1) is StreamState.IDLE
    assert h.feed(h.client.publish(1, "good", 6)) == [PublishRequest(1, 6.0, "good", "", "live")]


def test_reject_play():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream() + h.client.play(1, "nope"))
    h.out()
    assert h.conn.reject_play(1)
    assert describe(h.out()) == [("cmd", "onStatus", 0.0, 1, "NetStream.Play.StreamNotFound")]


def test_publisher_takeover_status_and_media_before_accept():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream() + h.client.publish(1, "key"))
    # an encoder that does not wait for Publish.Start: its sequence header is delivered
    assert h.feed(h.client.video(1, 0, AVC_SEQ)) == [VideoData(1, 0, AVC_SEQ)]
    h.conn.accept_publish(1)
    h.out()
    assert h.conn.send_status(1, "error", "NetStream.Publish.BadName", "Taken over")
    assert describe(h.out()) == [("cmd", "onStatus", 0.0, 1, "NetStream.Publish.BadName")]


def test_close_stream_unpublishes_once():
    h = Harness()
    h.publishing()
    assert h.feed(h.client.close_stream(1)) == [Unpublish(1)]
    assert describe(h.out()) == [("cmd", "onStatus", 0.0, 1, "NetStream.Unpublish.Success")]
    # stragglers after unpublish are dropped, deleteStream does not unpublish twice
    assert h.feed(h.client.video(1, 40, INTER) + h.client.fc_unpublish("key")
                  + h.client.delete_stream(1)) == []


def test_withdrawn_publish_makes_accept_a_no_op():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream() + h.client.publish(1, "key"))
    assert h.feed(h.client.delete_stream(1)) == [Unpublish(1)]
    h.out()
    assert h.conn.accept_publish(1) is False
    assert h.out() == []
    assert h.conn.send_status(1, "status", "x", "y") is False


def test_pipelined_releasestream_fcpublish_without_createstream():
    h = Harness()
    h.connected()
    h.feed(h.client.release_stream("k") + h.client.fc_publish("k") + h.client.fc_unpublish("k"))
    assert [d[1] for d in describe(h.out())] == ["_result", "_result", "onFCPublish", "_result"]


def test_unknown_commands():
    h = Harness()
    h.connected()
    h.feed(h.client.command("someRpc", 9, None, 1.0))
    cmd = decode_command(h.out()[0])
    assert (cmd.name, cmd.transaction_id) == ("_error", 9.0)
    assert cmd.arguments[0]["code"] == "NetConnection.Call.Failed"
    assert h.feed(h.client.command("notify", 0, None) + h.client.command("_result", 1, None)
                  + h.client.command("receiveAudio", 0, None, True, stream_id=0)) == []
    assert h.out() == []


def test_amf3_commands_and_data():
    h = Harness()
    h.handshake()
    ev = h.feed(h.client.command("connect", 1, {"app": "live", "objectEncoding": 3.0}, amf3=True))
    assert isinstance(ev[0], ConnectRequest) and ev[0].app == "live"
    h.conn.accept_connect({"custom": "x"})
    result = decode_command(h.out()[-1])
    assert result.arguments[0]["objectEncoding"] == 3.0
    assert result.command_object["custom"] == "x"
    h.feed(h.client.command("createStream", 2, None, amf3=True)
           + h.client.command("publish", 3, None, "k", stream_id=1, amf3=True))
    h.conn.accept_publish(1)
    body = b"\x00" + amf0.encode("onTextData") + b"\x11\x0a\x0b\x01\x09text\x06\x05hi\x01"
    ev = h.feed(h.client.message(T.DATA_AMF3, body, stream_id=1, csid=5))
    assert ev == [DataMessage(1, 0, "onTextData", [{"text": "hi"}])]


def test_aggregate_messages():
    h = Harness()
    h.publishing()
    body = m.build_aggregate([(9, 100, KEYFRAME), (8, 110, AAC), (18, 120, m.encode_data("onCuePoint", 1.0)),
                              (9, 133, INTER)], stream_id=1)
    ev = h.feed(h.client.message(T.AGGREGATE, body, stream_id=1, timestamp=2000, csid=6))
    assert ev == [VideoData(1, 2000, KEYFRAME), AudioData(1, 2010, AAC),
                  DataMessage(1, 2020, "onCuePoint", [1.0]), VideoData(1, 2033, INTER)]
    bad = m.build_aggregate([(20, 0, b"x")])
    with pytest.raises(RemoteProtocolError, match="aggregate"):
        h.feed(h.client.message(T.AGGREGATE, bad, stream_id=1, csid=6))


def test_ping():
    h = Harness()
    h.connected()
    h.conn.send_ping(1234)
    assert describe(h.out()) == [("PING_REQUEST", 1234)]
    assert h.feed(h.client.user_control(UC.PING_RESPONSE, 1234)) == [PingResponse(1234)]
    assert h.feed(h.client.user_control(UC.PING_REQUEST, 99)) == []
    assert describe(h.out()) == [("PING_RESPONSE", 99)]


def test_acknowledgement_after_each_window():
    h = Harness()
    h.publishing()
    h.feed(h.client.window_ack_size(4000))
    h.out()
    frame = b"\x27\x01" + bytes(3000)
    acks = []
    for i in range(6):
        h.feed(h.client.video(1, i * 33, frame))
        acks += [x for x in h.out() if x.type_id == T.ACK]
    seqs = [int.from_bytes(a.payload, "big") for a in acks]
    # 6 x ~3030 bytes with a 4000-byte window: an ack on every second or third call
    assert len(seqs) >= 3
    assert seqs[-1] <= h.conn.bytes_received
    assert all(b - a >= 4000 for a, b in zip(seqs, seqs[1:]))


def test_acknowledgement_with_the_default_window():
    h = Harness()
    h.publishing()
    h.client.chunk_size = 4096
    h.feed(h.client.set_chunk_size(4096))
    frame = b"\x27\x01" + bytes(100_000)
    for i in range(24):
        h.feed(h.client.video(1, i, frame))
    assert not [x for x in h.out() if x.type_id == T.ACK]
    h.feed(h.client.video(1, 99, frame))  # crosses 2.5 MB
    acks = [x for x in h.out() if x.type_id == T.ACK]
    assert len(acks) == 1
    assert int.from_bytes(acks[0].payload, "big") == h.conn.bytes_received > 2_500_000


def test_stats():
    h = Harness()
    h.publishing()
    assert h.conn.bytes_sent == len(h.raw_out)
    assert h.conn.bytes_received > 3073
    assert h.conn.state is ConnectionState.CONNECTED


# -- protocol errors ---------------------------------------------------------------------------


def dead_after(h: Harness, data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        h.feed(data)
    assert h.conn.state is ConnectionState.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        h.feed(b"")
    with pytest.raises(LocalProtocolError):
        h.conn.send_ping(1)


def test_command_before_connect():
    h = Harness()
    h.handshake()
    dead_after(h, h.client.create_stream(), "command not allowed in state await connect")


def test_command_before_connect_is_accepted():
    h = Harness()
    h.handshake()
    h.feed(h.client.connect())
    dead_after(h, h.client.create_stream(), "connect pending")


def test_media_before_connect():
    h = Harness()
    h.handshake()
    dead_after(h, h.client.video(1, 0, b"x"), "media not allowed")


def test_connect_twice():
    h = Harness()
    h.connected()
    dead_after(h, h.client.connect(2), "connect not allowed in state connected")


def test_publish_on_a_stream_that_was_not_created():
    h = Harness()
    h.connected()
    dead_after(h, h.client.publish(1, "key"), "publish on stream 1, which was not created")


def test_publish_on_stream_0():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream())
    dead_after(h, h.client.publish(0, "key"), "stream 0")


def test_publish_twice():
    h = Harness()
    h.publishing()
    dead_after(h, h.client.publish(1, "again", 9), "publish on stream 1 in state publishing")


def test_play_without_name():
    h = Harness()
    h.connected()
    h.feed(h.client.create_stream())
    dead_after(h, h.client.command("play", 3, None, stream_id=1), "play without a stream name")


def test_media_on_unknown_stream_and_data_on_stream_0():
    h = Harness()
    h.publishing()
    assert h.feed(h.client.message(T.DATA_AMF0, m.encode_data("onMetaData", {}), csid=5)) == []
    dead_after(h, h.client.video(3, 0, b"x"), "not created")


def test_too_many_streams():
    h = Harness()
    h.connected()
    h.feed(b"".join(h.client.create_stream(i + 2) for i in range(16)))
    dead_after(h, h.client.create_stream(99), "createStream")


def test_zero_window_and_bad_control_messages():
    h = Harness()
    h.connected()
    dead_after(h, h.client.window_ack_size(0), "Window Acknowledgement Size of 0")
    h = Harness()
    h.connected()
    dead_after(h, h.client.message(T.USER_CONTROL, b"\x00", csid=2), "user control")


def test_message_over_the_configured_limit():
    h = Harness(max_message_size=10_000)
    h.publishing()
    dead_after(h, h.client.video(1, 0, bytes(10_001)), "message of 10001 bytes exceeds the limit of 10000")


def test_local_protocol_errors():
    conn = RtmpConnection()
    with pytest.raises(LocalProtocolError):
        conn.accept_connect()
    with pytest.raises(LocalProtocolError):
        conn.accept_publish(1)
    h = Harness()
    h.connected()
    with pytest.raises(LocalProtocolError):
        h.conn.accept_connect()
    with pytest.raises(LocalProtocolError, match="no stream 1"):
        h.conn.accept_publish(1)
    h.feed(h.client.create_stream())
    with pytest.raises(LocalProtocolError, match="accept_publish on stream 1 in state idle"):
        h.conn.accept_publish(1)
    with pytest.raises(LocalProtocolError):
        h.conn.send_video(1, 0, b"x")
    with pytest.raises(LocalProtocolError):
        RtmpConnection(out_chunk_size=0)


# -- fuzzing -----------------------------------------------------------------------------------

COMMAND_NAMES = ["connect", "createStream", "publish", "play", "releaseStream", "FCPublish",
                 "FCUnpublish", "closeStream", "deleteStream", "getStreamLength", "_checkbw",
                 "FCSubscribe", "receiveAudio", "_result", "pause", "bogus"]
amf_args = st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=6),
                              st.booleans(), st.just(UNDEFINED),
                              st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)),
                    max_size=3)


@st.composite
def messages_strategy(draw):
    kind = draw(st.sampled_from(["command", "control", "media", "raw"]))
    stream_id = draw(st.sampled_from([0, 1, 2, 7]))
    csid = draw(st.sampled_from([2, 3, 4, 5, 6, 8, 70, 400]))
    if kind == "command":
        name = draw(st.sampled_from(COMMAND_NAMES))
        tid = draw(st.sampled_from([0.0, 1.0, 5.0, float("nan")]))
        body = amf0.encode_all([name, tid, draw(st.one_of(st.none(), st.just({"app": "x"}))),
                                *draw(amf_args)])
        type_id = draw(st.sampled_from([T.COMMAND_AMF0, T.COMMAND_AMF3]))
        if type_id == T.COMMAND_AMF3:
            body = b"\x00" + body
    elif kind == "control":
        type_id = draw(st.sampled_from([1, 2, 3, 4, 5, 6]))
        body = draw(st.one_of(st.binary(max_size=10),
                              st.integers(0, 2**32 - 1).map(lambda n: n.to_bytes(4, "big"))))
        if type_id == 1:
            body = draw(st.integers(1, 70000)).to_bytes(4, "big")
    elif kind == "media":
        type_id = draw(st.sampled_from([8, 9, 15, 18, 22]))
        body = draw(st.binary(max_size=300))
    else:
        type_id = draw(st.integers(0, 255))
        body = draw(st.binary(max_size=50))
    ts = draw(st.sampled_from([0, 33, 0xFFFFFF, 0x1000000]))
    return chunk_message(body, csid=csid, type_id=type_id, stream_id=stream_id, timestamp=ts)


def drive(h: Harness, data: bytes) -> None:
    """Feed data; react to requests like an application; only protocol errors may escape."""
    try:
        for ev in h.feed(data):
            if isinstance(ev, ConnectRequest):
                h.conn.accept_connect()
            elif isinstance(ev, PublishRequest):
                assert h.conn.accept_publish(ev.stream_id)
            elif isinstance(ev, PlayRequest):
                assert h.conn.accept_play(ev.stream_id)
                h.conn.send_video(ev.stream_id, 0, b"\x17\x00")
    except RemoteProtocolError:
        return
    h.out()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes_after_handshake(data, publishing):
    h = Harness()
    if publishing:
        h.publishing()
    else:
        h.handshake()
    drive(h, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages_strategy(), max_size=12), st.booleans())
def test_arbitrary_messages_after_handshake(msgs, connected):
    h = Harness()
    if connected:
        h.publishing()
    else:
        h.handshake()
    for wire in msgs:
        if h.conn.state is ConnectionState.ERROR:
            break
        drive(h, wire)


def test_rtmp_package_imports_only_the_standard_library():
    import ast
    import pathlib
    import sys

    import mediasrv.rtmp

    forbidden = {"asyncio", "socket", "time", "logging", "selectors", "ssl", "threading",
                 "prometheus_client", "aiohttp"}
    pkg = pathlib.Path(mediasrv.rtmp.__file__).parent
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in forbidden, f"{path.name} imports {name}"
                assert top in sys.stdlib_module_names or name.startswith("mediasrv.media"), \
                    f"{path.name} imports {name}"


def test_media_fast_path_sets_follow_the_transition_tables() -> None:
    """``_media`` skips the two table look-ups only where the tables say media changes
    nothing and is delivered: a connected connection, a publishing (or publish-pending)
    stream. Any other state still goes through the tables (and their errors/drops)."""
    from mediasrv.rtmp import connection as c

    assert c._CONN_MEDIA_PROCEEDS == {c.ConnectionState.CONNECTED}
    assert c._STREAM_MEDIA_DELIVERS == {c.StreamState.PUBLISHING, c.StreamState.PUBLISH_PENDING}
    for state in c._STREAM_MEDIA_DELIVERS:
        assert c._STREAM_TRANSITIONS[(state, c._SIn.MEDIA)] == (state, c._Do.DELIVER)
