"""AMF3: spec byte vectors, reference tables, round trips, limits and malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.rtmp import amf3
from mediasrv.rtmp.amf0 import (
    UNDEFINED,
    AmfDate,
    AmfEncodeError,
    AmfError,
    EcmaArray,
    TypedObject,
    XmlDocument,
)

from .test_amf0 import _mutate, same


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "0400"),
        (127, "047f"),
        (128, "048100"),
        (16383, "04ff7f"),
        (16384, "04818000"),
        (2097151, "04ffff7f"),
        (2097152, "0480c08000"),
        (268435455, "04bfffffff"),
        (-1, "04ffffffff"),
        (-268435456, "04c0808000"),
    ],
)
def test_integer_u29_vectors(n, wire):
    # AMF3 §1.3.1 (U29) and §3.6 (signed 29-bit integer)
    assert amf3.encode(n).hex() == wire
    assert amf3.decode(bytes.fromhex(wire)) == (n, len(wire) // 2)


def test_integers_outside_29_bits_become_doubles():
    assert amf3.encode(1 << 28) == b"\x05" + struct.pack(">d", 1 << 28)
    assert amf3.decode(amf3.encode(-(1 << 28) - 1))[0] == -(1 << 28) - 1


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (UNDEFINED, "00"),
        (None, "01"),
        (False, "02"),
        (True, "03"),
        (1.5, "053ff8000000000000"),
        ("hello", "060b68656c6c6f"),
        ("", "0601"),
        ([1, 2], "0905010401 0402"),
        ({"a": 1}, "0a0b01 0361 0401 01"),
        (EcmaArray({"a": 1}), "0901 0361 0401 01"),
        (b"\x01\x02\x03", "0c07010203"),
        (AmfDate(1.0, 0), "0801 3ff0000000000000"),
        (XmlDocument("<a/>"), "0709 3c612f3e"),
        (TypedObject("Foo", {"x": 5}), "0a0b 07466f6f 0378 0405 01"),
    ],
)
def test_known_vectors(value, wire):
    wire = bytes.fromhex(wire.replace(" ", ""))
    assert amf3.encode(value) == wire
    decoded, end = amf3.decode(wire)
    assert end == len(wire)
    assert same(decoded, value)


def test_string_reference_table():
    wire = amf3.encode_all(["ab", "ab", ""])
    assert wire == bytes.fromhex("06056162 0600 0601".replace(" ", ""))
    assert amf3.decode_all(wire) == ["ab", "ab", ""]


def test_sealed_traits_and_traits_reference():
    # [Foo{x: 3}, Foo{x: 6}]: traits inline with 1 sealed member (0x13), then traits ref 0.
    wire = bytes.fromhex("0905 01" "0a13 07466f6f 0378 0403" "0a01 0406".replace(" ", ""))
    value, _ = amf3.decode(wire)
    assert value == [TypedObject("Foo", {"x": 3}), TypedObject("Foo", {"x": 6})]


def test_object_reference_is_the_same_object():
    # array (object ref 0) holding an object (ref 1) and a reference to it.
    wire = bytes.fromhex("0905 01 0a0b01 01 0a02".replace(" ", ""))
    value, _ = amf3.decode(wire)
    assert value == [{}, {}]
    assert value[0] is value[1]


def test_mixed_array():
    wire = bytes.fromhex("0903 0361 0401 01 0402".replace(" ", ""))
    assert amf3.decode(wire)[0] == EcmaArray({"a": 1, "0": 2})


def test_xml_and_vectors():
    assert amf3.decode(bytes.fromhex("0b093c612f3e"))[0] == XmlDocument("<a/>")
    assert amf3.decode(bytes.fromhex("0d0500 00000001 ffffffff".replace(" ", "")))[0] == [1, -1]
    assert amf3.decode(bytes.fromhex("0e0300 ffffffff".replace(" ", "")))[0] == [0xFFFFFFFF]
    assert amf3.decode(bytes.fromhex("0f0300 3ff0000000000000".replace(" ", "")))[0] == [1.0]
    assert amf3.decode(bytes.fromhex("1005 00 033f 0401 0601".replace(" ", "")))[0] == [1, ""]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("04", "truncated"),
        ("04ff", "truncated"),
        ("060b6865", "truncated"),
        ("0602", "string reference 1 out of range"),
        ("0a02", "object reference 1 out of range"),
        ("0a05", "traits reference 1 out of range"),
        ("0a0707466f6f", "externalizable"),
        ("1103", "unsupported type marker 0x11"),
        ("12", "unsupported type marker 0x12"),
        ("09ffffff7f", "array of"),
        ("0dffffff7f00", "vector of"),
        ("0c8080807f", "truncated"),
        ("0a0b01 0361 0a00 01", "under construction"),
        ("0603ff", "UTF-8"),
    ],
)
def test_malformed(wire, message):
    with pytest.raises(AmfError, match=message):
        amf3.decode_all(bytes.fromhex(wire.replace(" ", "")))


def test_deep_nesting_is_refused():
    wire = b"\x09\x03\x01" * 5000 + b"\x01"
    with pytest.raises(AmfError, match="nesting"):
        amf3.decode(wire)


def test_reference_bomb_is_refused():
    # a0 = []; a_i = [ref a_{i-1}, ref a_{i-1}] -> 2**40 values once expanded.
    wire = b"\x09" + bytes([(41 << 1) | 1]) + b"\x01" + b"\x09\x01\x01"
    for i in range(1, 41):
        wire += b"\x09\x05\x01" + amf3_ref(i) * 2
    with pytest.raises(AmfError, match="values"):
        amf3.decode(wire, max_values=100_000)


def amf3_ref(index: int) -> bytes:
    return b"\x09" + bytes([index << 1])


def test_encode_errors():
    with pytest.raises(AmfEncodeError):
        amf3.encode({"": 1})
    with pytest.raises(AmfEncodeError):
        amf3.encode({1: 1})
    with pytest.raises(AmfEncodeError):
        amf3.encode(object())
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(AmfEncodeError):
        amf3.encode(cyclic)


# -- property tests ------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=20),
    st.none(),
    st.just(UNDEFINED),
    st.binary(max_size=20),
    st.builds(AmfDate, st.floats(allow_nan=False), st.just(0)),
    st.builds(XmlDocument, st.text(max_size=20)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        st.dictionaries(keys, children, min_size=1, max_size=5).map(EcmaArray),
        st.builds(TypedObject, st.text(min_size=1, max_size=8),
                  st.dictionaries(keys, children, max_size=4)),
    ),
    max_leaves=25,
)


def same3(a, b) -> bool:
    # AMF3 integers come back as int, doubles as float: compare numbers by value.
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float)):
        return a == b and not isinstance(b, bool)
    if isinstance(a, dict) and type(a) is type(b):
        return list(a) == list(b) and all(same3(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same3(x, y) for x, y in zip(a, b))
    if isinstance(a, TypedObject) and isinstance(b, TypedObject):
        return a.class_name == b.class_name and same3(a.properties, b.properties)
    return same(a, b)


@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip(value):
    wire = amf3.encode(value)
    decoded, end = amf3.decode(wire)
    assert end == len(wire)
    assert same3(decoded, value)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=4))
def test_round_trip_all_with_shared_string_table(vals):
    decoded = amf3.decode_all(amf3.encode_all(vals))
    assert len(decoded) == len(vals)
    assert all(same3(a, b) for a, b in zip(decoded, vals))


@settings(max_examples=50, deadline=None)
@given(values)
def test_every_truncation_is_a_typed_error(value):
    wire = amf3.encode(value)
    for cut in range(len(wire)):
        with pytest.raises(AmfError):
            amf3.decode(wire[:cut])


MARKER_BYTES = st.sampled_from([bytes((i,)) for i in range(0x13)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(MARKER_BYTES, st.binary(max_size=6)), max_size=40).map(b"".join),
    st.tuples(values, st.integers(0, 1000), st.binary(min_size=1, max_size=4)).map(
        lambda t: _mutate(amf3.encode(t[0]), t[1], t[2])),
))
def test_arbitrary_bytes_raise_only_amf_error(data):
    try:
        amf3.decode_all(data)
    except AmfError:
        pass
