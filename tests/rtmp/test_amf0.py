"""AMF0: spec byte vectors, round trips, limits and malformed input."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.rtmp import amf0
from mediasrv.rtmp.amf0 import (
    UNDEFINED,
    UNSUPPORTED,
    AmfDate,
    AmfEncodeError,
    AmfError,
    EcmaArray,
    TypedObject,
    XmlDocument,
)
from mediasrv.rtmp.errors import LocalProtocolError, RemoteProtocolError

ONE = bytes.fromhex("3ff0000000000000")  # 1.0 as an IEEE-754 double


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (1.0, b"\x00" + ONE),
        (True, b"\x01\x01"),
        (False, b"\x01\x00"),
        ("hello", b"\x02\x00\x05hello"),
        ("", b"\x02\x00\x00"),
        ({"a": 1.0}, b"\x03\x00\x01a\x00" + ONE + b"\x00\x00\x09"),
        (None, b"\x05"),
        (UNDEFINED, b"\x06"),
        (EcmaArray({"a": 1.0}), b"\x08\x00\x00\x00\x01\x00\x01a\x00" + ONE + b"\x00\x00\x09"),
        ([1.0, "x"], b"\x0a\x00\x00\x00\x02\x00" + ONE + b"\x02\x00\x01x"),
        (AmfDate(1.0, 0), b"\x0b" + ONE + b"\x00\x00"),
        (XmlDocument("<a/>"), b"\x0f\x00\x00\x00\x04<a/>"),
        (TypedObject("Foo", {"a": 1.0}), b"\x10\x00\x03Foo\x00\x01a\x00" + ONE + b"\x00\x00\x09"),
        (UNSUPPORTED, b"\x0d"),
        ("é", b"\x02\x00\x02\xc3\xa9"),
    ],
)
def test_known_vectors(value, wire):
    assert amf0.encode(value) == wire
    decoded, end = amf0.decode(wire)
    assert end == len(wire)
    assert decoded == value
    assert type(decoded) is type(value)


def test_long_string_uses_long_marker():
    s = "x" * 70000
    wire = amf0.encode(s)
    assert wire[:5] == b"\x0c" + struct.pack(">I", 70000)
    assert amf0.decode(wire) == (s, len(wire))


def test_int_encodes_as_number():
    assert amf0.encode(3) == amf0.encode(3.0)
    assert amf0.decode(amf0.encode(3)) == (3.0, 9)


def test_reference_points_at_the_same_object():
    # strict array (ref 0) of [object (ref 1), reference 1]  (AMF0 §2.9)
    wire = b"\x0a\x00\x00\x00\x02" + b"\x03\x00\x01a\x05\x00\x00\x09" + b"\x07\x00\x01"
    value, _ = amf0.decode(wire)
    assert value == [{"a": None}, {"a": None}]
    assert value[0] is value[1]


def test_avmplus_switch_to_amf3():
    # AMF0 §3.1: 0x11 then one AMF3 value (integer 5, then string "hi").
    assert amf0.decode_all(b"\x11\x04\x05\x11\x06\x05hi") == [5, "hi"]


def test_ecma_array_count_is_only_a_hint():
    wire = b"\x08\x00\x00\x00\x07\x00\x01a\x01\x01\x00\x00\x09"
    assert amf0.decode(wire)[0] == EcmaArray({"a": True})


def test_empty_key_before_a_value_is_a_property():
    wire = b"\x03\x00\x00\x05\x00\x00\x09"
    assert amf0.decode(wire)[0] == {"": None}
    assert amf0.encode({"": None}) == wire


def test_nan_round_trip():
    value, _ = amf0.decode(amf0.encode(float("nan")))
    assert math.isnan(value)


def test_decode_all_of_a_connect_command():
    body = amf0.encode_all(["connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live",
                                               "fourCcList": ["hvc1"]}])
    assert amf0.decode_all(body) == ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live",
                                                       "fourCcList": ["hvc1"]}]


def test_errors_are_typed():
    assert issubclass(AmfError, RemoteProtocolError)
    assert issubclass(AmfEncodeError, LocalProtocolError)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x00\x3f", "truncated"),
        (b"\x02\x00\x05hel", "truncated"),
        (b"\x0c\xff\xff\xff\xff", "truncated"),
        (b"\x0f\xff\xff\xff\xffabc", "truncated"),
        (b"\x0a\xff\xff\xff\xff\x05", "strict array of 4294967295"),
        (b"\x03\x00\x01a", "truncated"),
        (b"\x03\x00\x01a\x05", "truncated"),
        (b"\x09", "object-end"),
        (b"\x04", "unsupported type marker 0x04"),
        (b"\x0e", "unsupported type marker 0x0e"),
        (b"\x12", "unsupported type marker 0x12"),
        (b"\x07\x00\x00", "unknown object"),
        (b"\x03\x00\x01a\x07\x00\x00\x00\x00\x09", "under construction"),
        (b"\x02\x00\x02\xc3\x28", "UTF-8"),
        (b"\x11\x11", "AMF3"),
    ],
)
def test_malformed(wire, message):
    with pytest.raises(AmfError, match=message):
        amf0.decode_all(wire)


def test_empty_input():
    assert amf0.decode_all(b"") == []
    with pytest.raises(AmfError, match="truncated"):
        amf0.decode(b"")


def test_deep_nesting_is_refused():
    wire = b"\x0a\x00\x00\x00\x01" * 10_000 + b"\x05"
    with pytest.raises(AmfError, match="nesting"):
        amf0.decode(wire)
    # within the limit it works
    assert amf0.decode(b"\x0a\x00\x00\x00\x01" * 10 + b"\x05")[0] is not None


def test_deep_nesting_through_avmplus_is_refused():
    # The AMF3 part shares the AMF0 depth budget (60 + 10 > 64).
    wire = b"\x0a\x00\x00\x00\x01" * 60 + b"\x11" + b"\x09\x03\x01" * 10 + b"\x01"
    with pytest.raises(AmfError, match="nesting"):
        amf0.decode(wire)
    assert amf0.decode(b"\x0a\x00\x00\x00\x01" * 50 + b"\x11" + b"\x09\x03\x01" * 10 + b"\x01")


def test_reference_bomb_is_refused():
    # A strict array of [], then 40 arrays each holding two references to the previous
    # one: a few hundred bytes that describe 2**40 values once expanded.
    wire = b"\x0a\x00\x00\x00\x29" + b"\x0a\x00\x00\x00\x00"
    for i in range(1, 41):
        wire += b"\x0a\x00\x00\x00\x02" + struct.pack(">BH", 7, i) * 2
    with pytest.raises(AmfError, match="values"):
        amf0.decode(wire, max_values=100_000)


def test_encode_errors():
    with pytest.raises(AmfEncodeError):
        amf0.encode({1: 2})
    with pytest.raises(AmfEncodeError):
        amf0.encode(object())
    with pytest.raises(AmfEncodeError):
        amf0.encode("\ud800")
    with pytest.raises(AmfEncodeError):
        amf0.encode(10**400)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(AmfEncodeError):
        amf0.encode(cyclic)


# -- property tests ------------------------------------------------------------------------

keys = st.text(max_size=8)
scalars = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=20),
    st.none(),
    st.just(UNDEFINED),
    st.just(UNSUPPORTED),
    st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-32768, 32767)),
    st.builds(XmlDocument, st.text(max_size=20)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        st.dictionaries(keys, children, max_size=5).map(EcmaArray),
        st.builds(TypedObject, st.text(min_size=1, max_size=8),
                  st.dictionaries(keys, children, max_size=4)),
    ),
    max_leaves=25,
)


def same(a, b) -> bool:
    """Equality that also compares the AMF-relevant types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, TypedObject):
        return a.class_name == b.class_name and same(a.properties, b.properties)
    return a == b


@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip(value):
    wire = amf0.encode(value)
    decoded, end = amf0.decode(wire)
    assert end == len(wire)
    assert same(decoded, value)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=4))
def test_round_trip_all(vals):
    assert all(same(a, b) for a, b in zip(amf0.decode_all(amf0.encode_all(vals)), vals))


@settings(max_examples=50, deadline=None)
@given(values)
def test_every_truncation_is_a_typed_error(value):
    wire = amf0.encode(value)
    for cut in range(len(wire)):
        try:
            amf0.decode(wire[:cut])
        except AmfError:
            pass
        else:  # pragma: no cover - a prefix can never decode to a whole value
            raise AssertionError(f"prefix {wire[:cut]!r} decoded")


MARKER_BYTES = st.sampled_from([bytes((i,)) for i in range(0x13)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(MARKER_BYTES, st.binary(max_size=6)), max_size=40).map(b"".join),
    st.tuples(values, st.integers(0, 1000), st.binary(min_size=1, max_size=4)).map(
        lambda t: _mutate(amf0.encode(t[0]), t[1], t[2])),
))
def test_arbitrary_bytes_raise_only_amf_error(data):
    try:
        amf0.decode_all(data)
    except AmfError:
        pass


def _mutate(wire: bytes, pos: int, insert: bytes) -> bytes:
    pos %= len(wire) + 1
    return wire[:pos] + insert + wire[pos + len(insert):]


def test_values_and_events_pickle():
    # Events may cross into worker processes: the AMF types must survive pickling.
    import pickle

    from mediasrv.rtmp.events import DataMessage

    ev = DataMessage(1, 0, "onMetaData", [EcmaArray({"a": UNDEFINED, "d": AmfDate(1.0, 0),
                                                      "x": XmlDocument("<a/>"),
                                                      "t": TypedObject("T", {"u": UNSUPPORTED})})])
    back = pickle.loads(pickle.dumps(ev))
    assert back == ev
    assert back.values[0]["a"] is UNDEFINED and back.values[0]["t"].properties["u"] is UNSUPPORTED
    assert type(back.values[0]) is EcmaArray and type(back.values[0]["x"]) is XmlDocument
