"""Protocol control, user control, command/data parsing and aggregate messages."""

from __future__ import annotations

import pytest

from mediasrv.rtmp import amf0
from mediasrv.rtmp import messages as m
from mediasrv.rtmp.amf0 import AmfError, EcmaArray
from mediasrv.rtmp.errors import RemoteProtocolError
from mediasrv.rtmp.messages import MessageType as T
from mediasrv.rtmp.messages import UserControlEvent as UC


def test_type_ids():
    assert [int(t) for t in T] == [1, 2, 3, 4, 5, 6, 8, 9, 15, 16, 17, 18, 19, 20, 22]


def test_control_payloads():
    assert m.set_chunk_size(4096) == b"\x00\x00\x10\x00"
    assert m.abort(6) == b"\x00\x00\x00\x06"
    assert m.acknowledgement(2**32 + 5) == b"\x00\x00\x00\x05"
    assert m.window_ack_size(2_500_000) == (2_500_000).to_bytes(4, "big")
    assert m.set_peer_bandwidth(2_500_000) == (2_500_000).to_bytes(4, "big") + b"\x02"
    assert m.user_control(UC.STREAM_BEGIN, 1) == b"\x00\x00\x00\x00\x00\x01"
    assert m.user_control(UC.SET_BUFFER_LENGTH, 1, 3000) == bytes.fromhex("0003000000010000 0bb8".replace(" ", ""))


def test_user_control_parsing():
    assert m.parse_user_control(b"\x00\x06\x00\x00\x01\x00") == m.UserControl(UC.PING_REQUEST, 256)
    assert m.parse_user_control(bytes.fromhex("000300000001000003e8")).extra == 1000
    assert m.parse_user_control(b"\x00\x63\x00\x00\x00\x01").event == 99
    with pytest.raises(RemoteProtocolError):
        m.parse_user_control(b"\x00\x06\x00")
    with pytest.raises(RemoteProtocolError):
        m.parse_user_control(b"\x00\x03\x00\x00\x00\x01")
    with pytest.raises(RemoteProtocolError):
        m.parse_u32(b"\x00", "Window Acknowledgement Size")
    with pytest.raises(RemoteProtocolError):
        m.parse_set_peer_bandwidth(b"\x00\x00\x00\x01")


def test_command_round_trip_and_amf3_prefix():
    body = m.encode_command("connect", 1, {"app": "live"}, "extra")
    assert m.parse_command(body) == m.Command("connect", 1.0, {"app": "live"}, ["extra"])
    assert m.parse_command(b"\x00" + body, amf3=True) == m.parse_command(body)
    # a type-17 body without the format byte is read as plain AMF0
    assert m.parse_command(body, amf3=True).name == "connect"
    # AMF3 values inside (AVM+ switch)
    body3 = b"\x00" + amf0.encode_all(["publish", 5.0, None]) + b"\x11\x06\x07key"
    assert m.parse_command(body3, amf3=True).arguments == ["key"]


def test_command_without_transaction_id_defaults_to_0():
    assert m.parse_command(amf0.encode("onBWDone")) == m.Command("onBWDone", 0.0)


@pytest.mark.parametrize("body", [b"", amf0.encode(1.0), amf0.encode_all(["x", "y"]),
                                  amf0.encode_all(["x", True])])
def test_bad_commands(body):
    with pytest.raises(RemoteProtocolError):
        m.parse_command(body)


def test_bad_amf_in_command_is_an_amf_error():
    with pytest.raises(AmfError):
        m.parse_command(b"\x02\x00\x05con")


def test_data_unwraps_set_data_frame():
    meta = EcmaArray({"width": 1280.0})
    body = m.encode_data("@setDataFrame", "onMetaData", meta)
    name, values = m.parse_data(body)
    assert (name, values) == ("onMetaData", [meta])
    assert type(values[0]) is EcmaArray
    assert m.parse_data(m.encode_data("onMetaData", meta)) == ("onMetaData", [meta])
    assert m.parse_data(b"\x00" + body, amf3=True) == ("onMetaData", [meta])
    with pytest.raises(RemoteProtocolError):
        m.parse_data(m.encode_data("@setDataFrame"))
    with pytest.raises(RemoteProtocolError):
        m.parse_data(amf0.encode(1.0))


def test_status_object():
    assert m.status_object("status", "NetStream.Publish.Start", "d", details="k") == {
        "level": "status", "code": "NetStream.Publish.Start", "description": "d", "details": "k"}


def test_aggregate_split_renormalises_timestamps():
    # §7.1.6: the aggregate's timestamp minus the first sub-message's is the offset.
    body = m.build_aggregate([(9, 1000, b"v1"), (8, 1010, b"a1"), (9, 1033, b"v2")], stream_id=1)
    subs = m.split_aggregate(body, 5000)
    assert subs == [m.SubMessage(9, 5000, b"v1"), m.SubMessage(8, 5010, b"a1"),
                    m.SubMessage(9, 5033, b"v2")]


def test_aggregate_with_extended_timestamps_and_wrap():
    body = m.build_aggregate([(9, 0x01000000, b"x"), (9, 0x01000021, b"y")])
    assert [s.timestamp for s in m.split_aggregate(body, 0xFFFFFFF0)] == [0xFFFFFFF0, 0x11]


def test_aggregate_without_final_back_pointer():
    body = m.build_aggregate([(9, 0, b"x"), (8, 5, b"y")])[:-4]
    assert len(m.split_aggregate(body, 0)) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (m.build_aggregate([(9, 0, b"abc")])[:12], "sub-message of 3 bytes"),
        (m.build_aggregate([(9, 0, b"abc")])[:5], "truncated sub-message header"),
        (m.build_aggregate([(9, 0, b"abc")])[:-2], "truncated back pointer"),
        (m.build_aggregate([(20, 0, b"abc")]), "type 20"),
        (m.build_aggregate([(22, 0, b"abc")]), "type 22"),
    ],
)
def test_malformed_aggregates(body, message):
    with pytest.raises(RemoteProtocolError, match=message):
        m.split_aggregate(body, 0)
