"""A bounds-checked, MSB-first bit reader for codec headers.

Reading past the end raises :class:`MalformedMediaError`, never ``IndexError``, so
parsers built on it fail with a typed error on truncated input.
"""

from __future__ import annotations

from mediasrv.media.errors import MalformedMediaError

__all__ = ["BitReader", "ByteReader", "unescape_rbsp"]


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation-prevention bytes (``00 00 03`` → ``00 00``) from a NAL unit payload.

    H.264 §7.4.1 / H.265 §7.4.2: ``emulation_prevention_three_byte`` is inserted by the
    encoder after two zero bytes; the raw byte sequence payload (RBSP) is what the syntax
    tables describe.
    """
    if b"\x00\x00\x03" not in data:
        return bytes(data)
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """Read big-endian bit fields from ``data``.

    ``u(n)`` is the fixed-width field of the H.264/H.265/AV1 syntax tables, ``ue()``/``se()``
    the Exp-Golomb codes (H.264 §9.1), ``uvlc()`` AV1's variable length code (AV1 §4.10.3).
    """

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes, *, start_byte: int = 0) -> None:
        self._data = bytes(data)
        self._pos = start_byte * 8
        self._end = len(self._data) * 8

    @property
    def position(self) -> int:
        """Current position in bits from the start of the data."""
        return self._pos

    @property
    def bits_left(self) -> int:
        """Number of unread bits."""
        return self._end - self._pos

    def _need(self, n: int) -> None:
        if n < 0:
            raise MalformedMediaError(f"negative bit count {n}")
        if self._pos + n > self._end:
            raise MalformedMediaError(
                f"bitstream truncated: need {n} bits at bit {self._pos}, have {self._end - self._pos}"
            )

    def u(self, n: int) -> int:
        """Read an ``n``-bit unsigned integer (``n`` may be 0)."""
        self._need(n)
        if n == 0:
            return 0
        first = self._pos >> 3
        last = (self._pos + n - 1) >> 3
        chunk = int.from_bytes(self._data[first : last + 1], "big")
        shift = (last + 1) * 8 - (self._pos + n)
        self._pos += n
        return (chunk >> shift) & ((1 << n) - 1)

    def flag(self) -> bool:
        """Read one bit as a boolean."""
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        """Skip ``n`` bits."""
        self._need(n)
        self._pos += n

    def byte_align(self) -> None:
        """Advance to the next byte boundary."""
        self._pos = min(self._end, (self._pos + 7) & ~7)

    def ue(self) -> int:
        """Unsigned Exp-Golomb code ``ue(v)`` (H.264 §9.1); at most 32 leading zeros."""
        zeros = 0
        while not self.flag():
            zeros += 1
            if zeros > 32:
                raise MalformedMediaError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb code ``se(v)`` (H.264 §9.1.1)."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)

    def uvlc(self) -> int:
        """AV1 ``uvlc()`` (AV1 §4.10.3)."""
        zeros = 0
        while not self.flag():  # bounded: flag() raises at the end of the data
            zeros += 1
        if zeros >= 32:
            return (1 << 32) - 1
        return self.u(zeros) + (1 << zeros) - 1


class ByteReader:
    """Read big-endian byte fields from ``data``; running short raises MalformedMediaError.

    ``what`` names the structure in error messages (e.g. ``"avcC"``, ``"FLV video tag"``).
    """

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str = "data") -> None:
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        """Number of unread bytes."""
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        """Read ``n`` bytes."""
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedMediaError(
                f"{self.what} truncated: need {n} bytes at offset {self.pos}, have {len(self.data) - self.pos}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        """Read everything that is left."""
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def u8(self) -> int:
        """Unsigned 8-bit integer."""
        return self.take(1)[0]

    def u16(self) -> int:
        """Unsigned big-endian 16-bit integer."""
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        """Unsigned big-endian 24-bit integer (FLV UI24)."""
        return int.from_bytes(self.take(3), "big")

    def si24(self) -> int:
        """Signed big-endian 24-bit integer (FLV SI24, two's complement)."""
        value = self.u24()
        return value - (1 << 24) if value & 0x800000 else value

    def u32(self) -> int:
        """Unsigned big-endian 32-bit integer."""
        return int.from_bytes(self.take(4), "big")
