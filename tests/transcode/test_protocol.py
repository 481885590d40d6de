"""The pipe protocol between server and worker: framing round trips and bad input."""

from __future__ import annotations

import io

import pytest

from mediasrv.transcode import protocol
from mediasrv.transcode.protocol import AudioIn, MessageType, PacketOut, ProtocolError, VideoIn


def test_round_trip_of_every_message():
    stream = io.BytesIO(
        protocol.json_message(MessageType.CONFIG, {"rungs": [], "live": True})
        + protocol.video_message(-5, 40, b"\x00\x00\x00\x01\x65", keyframe=True, force_keyframe=True)
        + protocol.video_message(7, 7, b"", keyframe=False, discontinuity=True)
        + protocol.audio_message(21, 21, b"aac")
        + protocol.packet_message(2, 100, 133, b"x" * 70000, keyframe=True, discontinuity=True)
        + protocol.frame(MessageType.END)
    )
    assert protocol.read_message(stream) == (MessageType.CONFIG, {"rungs": [], "live": True})
    assert protocol.read_message(stream) == (MessageType.VIDEO, VideoIn(-5, 40, True, True, False, b"\x00\x00\x00\x01\x65"))
    assert protocol.read_message(stream) == (MessageType.VIDEO, VideoIn(7, 7, False, False, True, b""))
    assert protocol.read_message(stream) == (MessageType.AUDIO, AudioIn(21, 21, b"aac"))
    assert protocol.read_message(stream) == (MessageType.PACKET, PacketOut(2, 100, 133, True, True, b"x" * 70000))
    assert protocol.read_message(stream) == (MessageType.END, None)
    assert protocol.read_message(stream) is None


def test_header_helper_matches_the_whole_message():
    data = b"abc"
    assert protocol.packet_header(1, 2, 3, keyframe=False, discontinuity=False, size=3) + data == \
        protocol.packet_message(1, 2, 3, data, keyframe=False)


class _Trickle(io.RawIOBase):
    """A pipe that returns one byte per read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        out, self._data = self._data[:1], self._data[1:]
        return out


def test_reads_a_message_that_arrives_byte_by_byte():
    message = protocol.audio_message(1, 2, b"hello")
    assert protocol.read_message(_Trickle(message)) == (MessageType.AUDIO, AudioIn(1, 2, b"hello"))


@pytest.mark.parametrize("data, match", [
    (protocol.audio_message(1, 2, b"hello")[:-2], "end of file"),
    (b"\x00\x00\x00\x00\x05", "out of range"),
    (b"\x7f\xff\xff\xff\x05", "out of range"),
    (b"\x00\x00\x00\x01\x99", "unknown message type"),
    (b"\x00\x00\x00\x03\x04ab", "truncated"),
    (protocol.frame(MessageType.STATS, b"[1, 2]"), "expected an object"),
    (protocol.frame(MessageType.CONFIG, b"{nope"), "not JSON"),
])
def test_bad_input_is_a_protocol_error(data, match):
    with pytest.raises(ProtocolError, match=match):
        protocol.read_message(io.BytesIO(data))


def test_base64_helpers():
    assert protocol.unb64(protocol.b64(b"\x00\xff")) == b"\x00\xff"
    with pytest.raises(ValueError):
        protocol.unb64("!!")
