import pytest

from mediasrv.media.bitreader import BitReader, ByteReader, unescape_rbsp
from mediasrv.media.errors import MalformedMediaError


def test_fixed_width_fields_msb_first():
    r = BitReader(bytes([0b1011_0011, 0xFF, 0x01]))
    assert r.u(1) == 1
    assert r.u(3) == 0b011
    assert r.u(12) == 0b0011_1111_1111
    assert r.bits_left == 8
    assert r.u(0) == 0
    assert r.u(8) == 1
    assert r.bits_left == 0


@pytest.mark.parametrize(
    ("bits", "ue", "se"),
    [("1", 0, 0), ("010", 1, 1), ("011", 2, -1), ("00100", 3, 2), ("00101", 4, -2), ("0001000", 7, 4)],
)
def test_exp_golomb(bits, ue, se):
    # H.264 Table 9-2 / 9-3
    padded = bits + "1" + "0" * (-(len(bits) + 1) % 8)
    data = int(padded, 2).to_bytes(len(padded) // 8, "big")
    assert BitReader(data).ue() == ue
    assert BitReader(data).se() == se


def test_reading_past_the_end_is_malformed_not_index_error():
    r = BitReader(b"\x00")
    with pytest.raises(MalformedMediaError):
        r.ue()  # eight zeros then nothing
    with pytest.raises(MalformedMediaError):
        BitReader(b"").u(1)
    with pytest.raises(MalformedMediaError):
        BitReader(b"\xff").skip(9)


def test_exp_golomb_longer_than_32_bits_is_rejected():
    with pytest.raises(MalformedMediaError):
        BitReader(bytes(5) + b"\xff").ue()


def test_uvlc():
    # AV1 §4.10.3: '1' → 0, '010' → 1, '00111' → 6
    assert BitReader(bytes([0b1000_0000])).uvlc() == 0
    assert BitReader(bytes([0b0100_0000])).uvlc() == 1
    assert BitReader(bytes([0b0011_1000])).uvlc() == 6


def test_byte_align():
    r = BitReader(b"\xff\x0f")
    r.u(3)
    r.byte_align()
    assert r.position == 8
    assert r.u(8) == 0x0F


def test_unescape_rbsp():
    assert unescape_rbsp(b"\x00\x00\x03\x01") == b"\x00\x00\x01"
    assert unescape_rbsp(b"\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x00\x00"
    assert unescape_rbsp(b"\x01\x03\x00") == b"\x01\x03\x00"


def test_byte_reader():
    c = ByteReader(b"\x01\x00\x02\xff\xff\xfe\x00\x00\x00\x05rest", "thing")
    assert c.u8() == 1
    assert c.u16() == 2
    assert c.si24() == -2
    assert c.u32() == 5
    assert c.rest() == b"rest"
    assert c.remaining == 0
    with pytest.raises(MalformedMediaError, match="thing truncated"):
        c.u8()
