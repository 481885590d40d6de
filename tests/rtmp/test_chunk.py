"""Chunk stream reader and writer (RTMP spec §5.3, §5.4.1, §5.4.2)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediasrv.rtmp.chunk import ChunkReader, ChunkWriter, Message, encode_basic_header
from mediasrv.rtmp.errors import LocalProtocolError, RemoteProtocolError
from mediasrv.rtmp.messages import MessageType as T

from .factories import basic_header, chunk_message


def read(data: bytes, **kw) -> list[Message]:
    return ChunkReader(**kw).receive_data(data)


def read_bytewise(data: bytes, **kw) -> list[Message]:
    r = ChunkReader(**kw)
    out = []
    for i in range(len(data)):
        out += r.receive_data(data[i:i + 1])
    return out


def set_chunk_size(n: int, csid: int = 2) -> bytes:
    return chunk_message(n.to_bytes(4, "big"), csid=csid, type_id=T.SET_CHUNK_SIZE)


PAYLOAD = bytes(range(256)) * 3  # 768 bytes: 6 chunks of 128


def test_fmt0_single_and_multi_chunk():
    data = (chunk_message(b"abc", csid=3, type_id=20, stream_id=0, timestamp=5)
            + chunk_message(PAYLOAD, csid=4, type_id=9, stream_id=1, timestamp=40))
    expected = [Message(3, 20, 0, 5, b"abc"), Message(4, 9, 1, 40, PAYLOAD)]
    assert read(data) == expected
    assert read_bytewise(data) == expected


@pytest.mark.parametrize(("csid", "form"), [(2, 1), (63, 1), (64, 2), (319, 2), (320, 3),
                                            (65599, 3), (64, 3), (100, 3)])
def test_chunk_stream_id_forms(csid, form):
    data = chunk_message(PAYLOAD, csid=csid, csid_form=form, type_id=8, stream_id=1)
    data += chunk_message(b"x", csid=csid, csid_form=form, fmt=1, type_id=8, timestamp=3)
    assert read(data) == [Message(csid, 8, 1, 0, PAYLOAD), Message(csid, 8, 1, 3, b"x")]
    assert read_bytewise(data) == read(data)


def test_basic_header_encoding():
    assert encode_basic_header(0, 3) == b"\x03"
    assert encode_basic_header(3, 64) == b"\xc0\x00"
    assert encode_basic_header(1, 319) == b"\x40\xff"
    assert encode_basic_header(0, 320) == b"\x01\x00\x01"
    assert encode_basic_header(0, 65599) == b"\x01\xff\xff"
    assert basic_header(2, 65599) == b"\x81\xff\xff"
    with pytest.raises(LocalProtocolError):
        encode_basic_header(0, 1)


def test_header_formats_and_deltas():
    data = (chunk_message(b"a" * 10, csid=6, type_id=9, stream_id=1, timestamp=1000, fmt=0)
            + chunk_message(b"b" * 20, csid=6, type_id=8, timestamp=33, fmt=1)
            + chunk_message(b"c" * 20, csid=6, timestamp=34, fmt=2)
            + chunk_message(b"d" * 20, csid=6, fmt=3))  # new message: the delta repeats
    assert read(data) == [
        Message(6, 9, 1, 1000, b"a" * 10),
        Message(6, 8, 1, 1033, b"b" * 20),
        Message(6, 8, 1, 1067, b"c" * 20),
        Message(6, 8, 1, 1101, b"d" * 20),
    ]


def test_fmt3_new_message_after_fmt0_uses_its_timestamp_as_delta():
    # §5.3.1.2.4: "If a Type 3 chunk follows a Type 0 chunk, then the timestamp delta
    # for this Type 3 chunk is the same as the timestamp of the Type 0 chunk."
    data = (chunk_message(b"a", csid=5, type_id=8, stream_id=1, timestamp=20)
            + chunk_message(b"b", csid=5, fmt=3))
    assert [m.timestamp for m in read(data)] == [20, 40]


def test_extended_timestamp_fmt0_with_continuations():
    ts = 0x01234567
    data = chunk_message(PAYLOAD, csid=6, type_id=9, stream_id=1, timestamp=ts)
    # every continuation chunk repeats the 4-byte extended timestamp (§5.3.1.3)
    assert data.count(ts.to_bytes(4, "big")) == 6
    assert read(data) == [Message(6, 9, 1, ts, PAYLOAD)]
    assert read_bytewise(data) == [Message(6, 9, 1, ts, PAYLOAD)]


def test_extended_timestamp_missing_on_continuations_is_tolerated():
    ts = 0x01000000
    data = chunk_message(PAYLOAD, csid=6, type_id=9, stream_id=1, timestamp=ts,
                         ext_on_continuation=False)
    assert read(data) == [Message(6, 9, 1, ts, PAYLOAD)]


def test_extended_delta_and_fmt3_new_message_with_extended_field():
    data = (chunk_message(b"a", csid=4, type_id=8, stream_id=1, timestamp=100)
            + chunk_message(PAYLOAD, csid=4, type_id=8, timestamp=0x01000000, fmt=1)
            + chunk_message(PAYLOAD, csid=4, timestamp=0x01000000, fmt=3, extended=True))
    assert [(m.timestamp, len(m.payload)) for m in read(data)] == [
        (100, 1), (0x01000064, 768), (0x02000064, 768)]
    assert read_bytewise(data) == read(data)


def test_extended_timestamp_exactly_0xffffff():
    data = chunk_message(b"x", csid=4, type_id=8, stream_id=1, timestamp=0xFFFFFF)
    assert data[1:4] == b"\xff\xff\xff" and data[12:16] == b"\x00\xff\xff\xff"
    assert read(data)[0].timestamp == 0xFFFFFF


def test_timestamps_wrap_at_32_bits():
    data = (chunk_message(b"a", csid=4, type_id=8, stream_id=1, timestamp=0xFFFFFFF0)
            + chunk_message(b"b", csid=4, type_id=8, timestamp=0x20, fmt=1))
    assert [m.timestamp for m in read(data)] == [0xFFFFFFF0, 0x10]


def test_chunk_size_1():
    data = set_chunk_size(1) + chunk_message(PAYLOAD[:50], csid=3, type_id=20, chunk_size=1)
    msgs = read(data)
    assert msgs[1] == Message(3, 20, 0, 0, PAYLOAD[:50])
    assert read_bytewise(data) == msgs


def test_chunk_size_max():
    big = random.Random(1).randbytes(300_000)
    data = set_chunk_size(0x7FFFFFFF) + chunk_message(big, csid=6, type_id=9, stream_id=1,
                                                      chunk_size=0x7FFFFFFF)
    r = ChunkReader()
    msgs = r.receive_data(data)
    assert r.chunk_size == 0x7FFFFFFF
    assert msgs[1].payload == big
    # in pieces too
    r = ChunkReader()
    out = []
    for i in range(0, len(data), 7000):
        out += r.receive_data(data[i:i + 7000])
    assert out[1].payload == big


@pytest.mark.parametrize("value", [0x80000000, 0xFFFFFFFF, 0])
def test_set_chunk_size_invalid(value):
    with pytest.raises(RemoteProtocolError, match="Set Chunk Size"):
        read(set_chunk_size(value))


def test_abort_drops_the_partial_message():
    first = chunk_message(PAYLOAD, csid=6, type_id=9, stream_id=1)[:128 + 12]  # one chunk
    abort = chunk_message((6).to_bytes(4, "big"), csid=2, type_id=T.ABORT)
    again = chunk_message(b"fresh", csid=6, type_id=9, stream_id=1, timestamp=7)
    msgs = read(first + abort + again)
    assert [m.type_id for m in msgs] == [T.ABORT, 9]
    assert msgs[1] == Message(6, 9, 1, 7, b"fresh")


def test_abort_of_unknown_stream_is_harmless():
    abort = chunk_message((9).to_bytes(4, "big"), csid=2, type_id=T.ABORT)
    assert len(read(abort)) == 1


def test_interleaved_messages_on_several_chunk_streams():
    video = bytes(range(256)) * 2
    audio = bytes(reversed(range(256)))
    v = chunk_message(video, csid=6, type_id=9, stream_id=1, timestamp=10)
    a = chunk_message(audio, csid=4, type_id=8, stream_id=1, timestamp=11)
    # v: 12+128, then 3 x (1+128); a: 12+128, then 1 x (1+128)
    v_chunks = [v[:140]] + [v[140 + i * 129:140 + (i + 1) * 129] for i in range(3)]
    a_chunks = [a[:140], a[140:]]
    data = v_chunks[0] + a_chunks[0] + v_chunks[1] + a_chunks[1] + v_chunks[2] + v_chunks[3]
    assert read(data) == [Message(4, 8, 1, 11, audio), Message(6, 9, 1, 10, video)]


@pytest.mark.parametrize("length", [101, 200, 201, 350, 400])
def test_whole_multi_chunk_messages_in_one_buffer(length):
    """Messages whose chunks are all buffered back to back are joined in one step
    (``ChunkReader._gather``): same messages as chunk by chunk, across a chunk size
    change, exact multiples of the chunk size, and a message cut short by the buffer."""
    payload = bytes(i % 251 for i in range(length))
    data = (set_chunk_size(100)
            + chunk_message(payload, csid=6, type_id=9, stream_id=1, timestamp=7, chunk_size=100)
            + chunk_message(payload[::-1], csid=6, type_id=9, fmt=1, timestamp=33, chunk_size=100))
    expected = [Message(6, 9, 1, 7, payload), Message(6, 9, 1, 40, payload[::-1])]
    assert read(data)[1:] == expected
    assert read_bytewise(data)[1:] == expected
    reader = ChunkReader()
    assert len(reader.receive_data(data[:-1])) == 2  # the last byte missing: not complete
    assert reader.receive_data(data[-1:]) == expected[1:]
    # A continuation header of another chunk stream where ours was expected (interleaving)
    # is parsed chunk by chunk: here it names a stream that does not exist yet.
    bad = bytearray(data)
    first_continuation = len(set_chunk_size(100)) + 12 + 100
    bad[first_continuation] = 0xC0 | 7
    with pytest.raises(RemoteProtocolError, match="chunk stream 7 starts with a fmt 3 header"):
        read(bytes(bad))


def test_message_over_the_limit():
    data = chunk_message(b"", csid=6, type_id=9, stream_id=1, length=1001)
    with pytest.raises(RemoteProtocolError, match="message of 1001 bytes exceeds the limit of 1000"):
        read(data, max_message_size=1000)
    # a fmt 1 header that raises the length is checked too
    data = (chunk_message(b"x", csid=6, type_id=9, stream_id=1)
            + chunk_message(b"", csid=6, type_id=9, fmt=1, length=5000))
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        read(data, max_message_size=1000)


def test_partial_message_caps():
    data = b"".join(chunk_message(PAYLOAD, csid=c, type_id=9, stream_id=1)[:140]
                    for c in range(3, 12))
    with pytest.raises(RemoteProtocolError, match="interleaved partial messages"):
        read(data, max_partial_messages=8)
    data = b"".join(chunk_message(PAYLOAD, csid=c, type_id=9, stream_id=1)[:140]
                    for c in range(3, 6))
    with pytest.raises(RemoteProtocolError, match="partial messages of more than"):
        read(data, max_partial_bytes=2000)


def test_chunk_stream_cap():
    data = b"".join(chunk_message(b"x", csid=c, type_id=9, stream_id=1) for c in range(3, 70))
    with pytest.raises(RemoteProtocolError, match="more than 64 chunk streams"):
        read(data)


def test_first_header_must_be_fmt0():
    with pytest.raises(RemoteProtocolError, match="starts with a fmt 1"):
        read(chunk_message(b"x", csid=5, fmt=1))
    with pytest.raises(RemoteProtocolError, match="starts with a fmt 3"):
        read(b"\xc5")


def test_new_header_inside_an_incomplete_message():
    data = (chunk_message(PAYLOAD, csid=6, type_id=9, stream_id=1)[:140]
            + chunk_message(b"x", csid=6, type_id=9, fmt=1))
    with pytest.raises(RemoteProtocolError, match="incomplete"):
        read(data)


def test_empty_message():
    data = chunk_message(b"", csid=3, type_id=20) + chunk_message(b"", csid=3, fmt=3)
    assert read(data) == [Message(3, 20, 0, 0, b""), Message(3, 20, 0, 0, b"")]


# -- writer ------------------------------------------------------------------------------------


def test_writer_header_compression():
    w = ChunkWriter(128)
    first = w.write(6, 9, 1, 1000, b"a" * 10)
    second = w.write(6, 9, 1, 1033, b"b" * 10)
    third = w.write(6, 8, 1, 1066, b"c" * 5)
    back = w.write(6, 8, 1, 10, b"d")
    other_stream = w.write(6, 8, 2, 20, b"e")
    assert first[0] >> 6 == 0 and second[0] >> 6 == 2 and third[0] >> 6 == 1
    assert back[0] >> 6 == 0 and other_stream[0] >> 6 == 0
    assert read(first + second + third + back + other_stream) == [
        Message(6, 9, 1, 1000, b"a" * 10), Message(6, 9, 1, 1033, b"b" * 10),
        Message(6, 8, 1, 1066, b"c" * 5), Message(6, 8, 1, 10, b"d"),
        Message(6, 8, 2, 20, b"e")]


def test_writer_extended_timestamp_on_every_chunk():
    w = ChunkWriter(128)
    data = w.write(7, 9, 1, 0x12345678, PAYLOAD)
    assert data[1:4] == b"\xff\xff\xff"
    assert data.count(bytes.fromhex("12345678")) == 6
    # the continuation chunks: fmt 3 basic header followed by the extended timestamp
    assert data[12 + 4 + 128:12 + 4 + 128 + 5] == b"\xc7\x12\x34\x56\x78"
    assert read(data) == [Message(7, 9, 1, 0x12345678, PAYLOAD)]


def test_writer_rejects_bad_arguments():
    with pytest.raises(LocalProtocolError):
        ChunkWriter(0)
    with pytest.raises(LocalProtocolError):
        ChunkWriter().write(3, 20, 0, 0, b"x" * 0x1000000)


messages = st.lists(
    st.tuples(
        st.sampled_from([2, 3, 4, 6, 63, 64, 319, 320, 65599]),
        st.sampled_from([8, 9, 18, 20]),
        st.integers(0, 3),
        st.one_of(st.integers(0, 2000), st.integers(0xFFFFF0, 0x1000010),
                  st.integers(0, 0xFFFFFFFF)),
        st.binary(max_size=700),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(messages, st.sampled_from([1, 2, 7, 128, 4096, 0x7FFFFFFF]), st.randoms())
def test_writer_reader_round_trip_in_random_pieces(msgs, chunk_size, rnd):
    w = ChunkWriter(128)
    data = w.write(2, T.SET_CHUNK_SIZE, 0, 0, chunk_size.to_bytes(4, "big"))
    w.chunk_size = chunk_size
    for csid, type_id, sid, ts, payload in msgs:
        data += w.write(csid, type_id, sid, ts, payload)
    r = ChunkReader()
    got = []
    pos = 0
    while pos < len(data):
        n = rnd.randint(1, 300)
        got += r.receive_data(data[pos:pos + n])
        pos += n
    assert got[1:] == [Message(c, t, s, ts, p) for c, t, s, ts, p in msgs]
    assert r.buffered == 0


def test_socket_sized_reads_of_a_3_mbit_stream_give_every_message_whole():
    # 3 Mbit/s for 10 s: 3.75 MB of 12.5 kB video messages in 4096-byte chunks, read in
    # 16 kB pieces as a socket hands them over (pieces end mid-chunk and mid-header).
    # How fast this goes is measured by benchmarks/ingest.py, not asserted here.
    w = ChunkWriter(128)
    data = bytearray(w.write(2, 1, 0, 0, (4096).to_bytes(4, "big")))
    w.chunk_size = 4096
    frame = random.Random(2).randbytes(12_500)
    for i in range(300):
        data += w.write(6, 9, 1, i * 33, frame)
        data += w.write(4, 8, 1, i * 33, frame[:300])
    r = ChunkReader()
    got = []
    for i in range(0, len(data), 16384):
        got += r.receive_data(bytes(data[i:i + 16384]))
    assert len(got) == 601
    media = got[1:]
    assert [(m.type_id, m.timestamp) for m in media[:4]] == [(9, 0), (8, 0), (9, 33), (8, 33)]
    assert all(m.payload == frame for m in media[0::2]) and all(m.payload == frame[:300] for m in media[1::2])
    assert r.buffered == 0


@settings(max_examples=100, deadline=None)
@given(messages, st.sampled_from([1, 7, 128, 4096]), st.randoms())
def test_next_fields_are_the_message_fields(msgs, chunk_size, rnd):
    # next_fields (what the connection reads) gives next_message's fields, in order, with
    # the same control messages applied: fed the same pieces, the two readers agree.
    w = ChunkWriter(128)
    data = w.write(2, T.SET_CHUNK_SIZE, 0, 0, chunk_size.to_bytes(4, "big"))
    w.chunk_size = chunk_size
    for csid, type_id, sid, ts, payload in msgs:
        data += w.write(csid, type_id, sid, ts, payload)
    by_message, by_fields = ChunkReader(), ChunkReader()
    messages_out, fields_out = [], []
    pos = 0
    while pos < len(data):
        n = rnd.randint(1, 300)
        by_message.feed(data[pos:pos + n])
        by_fields.feed(data[pos:pos + n])
        while (msg := by_message.next_message()) is not None:
            messages_out.append(msg)
        while (fields := by_fields.next_fields()) is not None:
            fields_out.append(fields)
        pos += n
    assert [Message(*f) for f in fields_out] == messages_out
    assert len(messages_out) == len(msgs) + 1
