"""AMF3 (Action Message Format 3) decoder and encoder.

Reference: Adobe "Action Message Format -- AMF 3" (2013), cited below as "AMF3 §x".
RTMP carries AMF3 inside AMF0 behind the AVM+ marker (AMF0 §3.1), in AMF3 command
messages (type 17) and AMF3 data messages (type 15).

Python mapping: undefined → :data:`~mediasrv.rtmp.amf0.UNDEFINED`, null → ``None``,
false/true → ``bool``, integer → ``int``, double → ``float``, string → ``str``,
XMLDocument/XML → :class:`~mediasrv.rtmp.amf0.XmlDocument`, date →
:class:`~mediasrv.rtmp.amf0.AmfDate` (timezone 0), dense array → ``list``, array with an
associative part → :class:`~mediasrv.rtmp.amf0.EcmaArray` (dense items under the keys
``"0"``, ``"1"``, ...), anonymous object → ``dict``, object with a class name →
:class:`~mediasrv.rtmp.amf0.TypedObject`, ByteArray → ``bytes``, Vector.<int|uint|Number|
Object> → ``list``. Externalizable objects and Dictionary are refused with
:class:`~mediasrv.rtmp.amf0.AmfError` (their layout is application-defined or their keys
need not be hashable).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any, Iterable

from .amf_values import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_VALUES,
    UNDEFINED,
    UNSUPPORTED,
    AmfDate,
    AmfEncodeError,
    AmfError,
    EcmaArray,
    TypedObject,
    XmlDocument,
)

__all__ = ["Marker", "decode", "decode_all", "decode_with_budget", "encode", "encode_all",
           "INT_MIN", "INT_MAX"]

#: Range of the AMF3 integer type: signed 29 bits (AMF3 §3.6).
INT_MIN = -(1 << 28)
INT_MAX = (1 << 28) - 1
_U29_MAX = (1 << 29) - 1


class Marker(IntEnum):
    """AMF3 type markers (AMF3 §3.1)."""

    UNDEFINED = 0x00
    NULL = 0x01
    FALSE = 0x02
    TRUE = 0x03
    INTEGER = 0x04
    DOUBLE = 0x05
    STRING = 0x06
    XML_DOC = 0x07
    DATE = 0x08
    ARRAY = 0x09
    OBJECT = 0x0A
    XML = 0x0B
    BYTE_ARRAY = 0x0C
    VECTOR_INT = 0x0D
    VECTOR_UINT = 0x0E
    VECTOR_DOUBLE = 0x0F
    VECTOR_OBJECT = 0x10
    DICTIONARY = 0x11


_DOUBLE = struct.Struct(">d")


class _Traits:
    __slots__ = ("class_name", "dynamic", "names")

    def __init__(self, class_name: str, dynamic: bool, names: list[str]) -> None:
        self.class_name = class_name
        self.dynamic = dynamic
        self.names = names


class _Decoder:
    """One AMF3 decode pass with its three reference tables (AMF3 §2.2)."""

    __slots__ = ("data", "pos", "end", "depth", "max_depth", "values", "max_values",
                 "strings", "objects", "object_sizes", "traits")

    def __init__(self, data, offset: int, max_depth: int, max_values: int) -> None:
        self.data = data
        self.pos = offset
        self.end = len(data)
        self.depth = 0
        self.max_depth = max_depth
        self.values = 0
        self.max_values = max_values
        self.strings: list[str] = []
        self.objects: list[Any] = []  # None while under construction
        self.object_sizes: list[int] = []
        self.traits: list[_Traits] = []

    def need(self, n: int) -> None:
        if self.end - self.pos < n:
            raise AmfError(f"AMF3: truncated data (need {n} bytes at offset {self.pos}, "
                           f"{self.end - self.pos} left)")

    def u8(self) -> int:
        self.need(1)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u29(self) -> int:
        # AMF3 §1.3.1: 1 to 4 bytes; the first three carry 7 bits and a continuation
        # flag, a fourth byte carries 8 bits.
        b = self.u8()
        if b < 0x80:
            return b
        v = b & 0x7F
        b = self.u8()
        if b < 0x80:
            return (v << 7) | b
        v = (v << 7) | (b & 0x7F)
        b = self.u8()
        if b < 0x80:
            return (v << 7) | b
        v = (v << 7) | (b & 0x7F)
        return (v << 8) | self.u8()

    def double(self) -> float:
        self.need(8)
        (v,) = _DOUBLE.unpack_from(self.data, self.pos)
        self.pos += 8
        return v

    def utf8(self, n: int) -> str:
        self.need(n)
        raw = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError(f"AMF3: invalid UTF-8 in string: {exc.reason}") from None

    def string(self) -> str:
        # UTF-8-vr (AMF3 §1.3.2): low bit 0 = index into the string table; the empty
        # string is never put in the table.
        h = self.u29()
        if not h & 1:
            index = h >> 1
            if index >= len(self.strings):
                raise AmfError(f"AMF3: string reference {index} out of range")
            return self.strings[index]
        s = self.utf8(h >> 1)
        if s:
            self.strings.append(s)
        return s

    def count(self) -> None:
        self.values += 1
        if self.values > self.max_values:
            raise AmfError(f"AMF3: more than {self.max_values} values")

    def object_ref(self, h: int) -> Any:
        index = h >> 1
        if index >= len(self.objects):
            raise AmfError(f"AMF3: object reference {index} out of range")
        value = self.objects[index]
        if value is None:
            raise AmfError(f"AMF3: reference {index} to an object under construction")
        self.values += self.object_sizes[index]
        if self.values > self.max_values:
            raise AmfError(f"AMF3: more than {self.max_values} values")
        return value

    def add_object(self, value: Any) -> None:
        self.objects.append(value)
        self.object_sizes.append(0)

    def begin_complex(self) -> tuple[int, int]:
        if self.depth >= self.max_depth:
            raise AmfError(f"AMF3: nesting deeper than {self.max_depth}")
        self.depth += 1
        index = len(self.objects)
        self.objects.append(None)
        self.object_sizes.append(0)
        return index, self.values

    def end_complex(self, index: int, before: int, value: Any) -> Any:
        self.depth -= 1
        self.objects[index] = value
        self.object_sizes[index] = self.values - before
        return value

    def bounded_count(self, n: int, min_item_size: int, what: str) -> int:
        if n * min_item_size > self.end - self.pos:
            raise AmfError(f"AMF3: {what} of {n} items in {self.end - self.pos} bytes")
        return n

    def value(self) -> Any:
        marker = self.u8()
        self.count()
        if marker == Marker.UNDEFINED:
            return UNDEFINED
        if marker == Marker.NULL:
            return None
        if marker == Marker.FALSE:
            return False
        if marker == Marker.TRUE:
            return True
        if marker == Marker.INTEGER:
            v = self.u29()
            return v - (1 << 29) if v & (1 << 28) else v  # signed 29-bit (AMF3 §3.6)
        if marker == Marker.DOUBLE:
            return self.double()
        if marker == Marker.STRING:
            return self.string()
        if marker in (Marker.XML_DOC, Marker.XML):
            h = self.u29()
            if not h & 1:
                return self.object_ref(h)
            doc = XmlDocument(self.utf8(h >> 1))
            self.add_object(doc)
            return doc
        if marker == Marker.DATE:
            h = self.u29()
            if not h & 1:
                return self.object_ref(h)
            date = AmfDate(self.double(), 0)
            self.add_object(date)
            return date
        if marker == Marker.ARRAY:
            return self.array()
        if marker == Marker.OBJECT:
            return self.object()
        if marker == Marker.BYTE_ARRAY:
            h = self.u29()
            if not h & 1:
                return self.object_ref(h)
            n = h >> 1
            self.need(n)
            raw = bytes(self.data[self.pos:self.pos + n])
            self.pos += n
            self.add_object(raw)
            return raw
        if marker in (Marker.VECTOR_INT, Marker.VECTOR_UINT, Marker.VECTOR_DOUBLE):
            return self.number_vector(marker)
        if marker == Marker.VECTOR_OBJECT:
            return self.object_vector()
        raise AmfError(f"AMF3: unsupported type marker 0x{marker:02x}")

    def array(self) -> Any:
        # AMF3 §3.11: U29A (dense count), associative name/value pairs up to the empty
        # name, then the dense values.
        h = self.u29()
        if not h & 1:
            return self.object_ref(h)
        dense = self.bounded_count(h >> 1, 1, "array")
        index, before = self.begin_complex()
        assoc: dict[str, Any] = {}
        while True:
            key = self.string()
            if key == "":
                break
            assoc[key] = self.value()
        items = [self.value() for _ in range(dense)]
        if assoc:
            result: Any = EcmaArray(assoc)
            for i, item in enumerate(items):
                result[str(i)] = item
        else:
            result = items
        return self.end_complex(index, before, result)

    def object(self) -> Any:
        # AMF3 §3.12: U29O-ref / U29O-traits-ref / U29O-traits-ext / U29O-traits.
        h = self.u29()
        if not h & 1:
            return self.object_ref(h)
        if not h & 2:
            ti = h >> 2
            if ti >= len(self.traits):
                raise AmfError(f"AMF3: traits reference {ti} out of range")
            traits = self.traits[ti]
        elif h & 4:
            raise AmfError("AMF3: externalizable objects are not supported")
        else:
            dynamic = bool(h & 8)
            n = self.bounded_count(h >> 4, 1, "sealed member list")
            class_name = self.string()
            names = [self.string() for _ in range(n)]
            traits = _Traits(class_name, dynamic, names)
            self.traits.append(traits)
        index, before = self.begin_complex()
        props: dict[str, Any] = {}
        self.bounded_count(len(traits.names), 1, "sealed values")
        for name in traits.names:
            props[name] = self.value()
        if traits.dynamic:
            while True:
                key = self.string()
                if key == "":
                    break
                props[key] = self.value()
        result = TypedObject(traits.class_name, props) if traits.class_name else props
        return self.end_complex(index, before, result)

    def number_vector(self, marker: int) -> list:
        # AMF3 §3.15: U29V count, fixed-length flag, then packed 32-bit ints or doubles.
        h = self.u29()
        if not h & 1:
            return self.object_ref(h)
        n = h >> 1
        self.u8()  # fixed-vector flag: irrelevant in Python
        size = 8 if marker == Marker.VECTOR_DOUBLE else 4
        self.bounded_count(n, size, "vector")
        fmt = {Marker.VECTOR_INT: "i", Marker.VECTOR_UINT: "I", Marker.VECTOR_DOUBLE: "d"}[marker]
        items = list(struct.unpack_from(f">{n}{fmt}", self.data, self.pos))
        self.pos += n * size
        self.values += n
        if self.values > self.max_values:
            raise AmfError(f"AMF3: more than {self.max_values} values")
        self.add_object(items)
        self.object_sizes[-1] = n
        return items

    def object_vector(self) -> list:
        h = self.u29()
        if not h & 1:
            return self.object_ref(h)
        n = self.bounded_count(h >> 1, 1, "vector")
        self.u8()  # fixed-vector flag
        self.string()  # object type name ("*" for any)
        index, before = self.begin_complex()
        items = [self.value() for _ in range(n)]
        return self.end_complex(index, before, items)


def decode_with_budget(data, offset: int, *, max_depth: int,
                       max_values: int) -> tuple[Any, int, int]:
    """Decode one AMF3 value; return ``(value, offset_after, values_used)``.

    For the AMF0 decoder's AVM+ switch, which shares its depth and value budget.
    """
    if max_depth <= 0 or max_values <= 0:
        raise AmfError("AMF3: nesting or value limit reached")
    dec = _Decoder(data, offset, max_depth, max_values)
    value = dec.value()
    return value, dec.pos, dec.values


def decode(data: bytes | bytearray | memoryview, offset: int = 0, *,
           max_depth: int = DEFAULT_MAX_DEPTH,
           max_values: int = DEFAULT_MAX_VALUES) -> tuple[Any, int]:
    """Decode one AMF3 value at ``offset``; return ``(value, offset_after)``.

    Raises :class:`~mediasrv.rtmp.amf0.AmfError` on truncated, malformed or over-limit
    input.
    """
    dec = _Decoder(data, offset, max_depth, max_values)
    value = dec.value()
    return value, dec.pos


def decode_all(data: bytes | bytearray | memoryview, offset: int = 0, *,
               max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES) -> list[Any]:
    """Decode consecutive AMF3 values (sharing reference tables) up to the end of ``data``."""
    dec = _Decoder(data, offset, max_depth, max_values)
    out = []
    while dec.pos < dec.end:
        out.append(dec.value())
    return out


# -- encoding ---------------------------------------------------------------------------


def _u29(n: int) -> bytes:
    if n < 0 or n > _U29_MAX:
        raise AmfEncodeError(f"AMF3: {n} does not fit in U29")
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes(((n >> 7) | 0x80, n & 0x7F))
    if n < 0x200000:
        return bytes(((n >> 14) | 0x80, ((n >> 7) & 0x7F) | 0x80, n & 0x7F))
    return bytes(((n >> 22) | 0x80, ((n >> 15) & 0x7F) | 0x80, ((n >> 8) & 0x7F) | 0x80,
                  n & 0xFF))


class _Encoder:
    __slots__ = ("out", "strings")

    def __init__(self) -> None:
        self.out = bytearray()
        self.strings: dict[str, int] = {}

    def string(self, s: str) -> None:
        if s == "":
            self.out.append(0x01)  # empty string: inline, never referenced (AMF3 §1.3.2)
            return
        index = self.strings.get(s)
        if index is not None:
            self.out += _u29(index << 1)
            return
        try:
            raw = s.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AmfEncodeError(f"AMF3: string is not encodable as UTF-8: {exc.reason}") from None
        if len(raw) > (_U29_MAX >> 1):
            raise AmfEncodeError("AMF3: string too long")
        self.strings[s] = len(self.strings)
        self.out += _u29((len(raw) << 1) | 1)
        self.out += raw

    def key(self, k: Any) -> None:
        if not isinstance(k, str):
            raise AmfEncodeError(f"AMF3: keys must be str, not {type(k).__name__}")
        if k == "":
            raise AmfEncodeError("AMF3: an empty key cannot be encoded (it ends the list)")
        self.string(k)

    def value(self, value: Any, depth: int) -> None:
        out = self.out
        if depth > DEFAULT_MAX_DEPTH:
            raise AmfEncodeError(f"AMF3: nesting deeper than {DEFAULT_MAX_DEPTH} (a cycle?)")
        if value is None:
            out.append(Marker.NULL)
        elif value is UNDEFINED or value is UNSUPPORTED:
            out.append(Marker.UNDEFINED)
        elif value is True:
            out.append(Marker.TRUE)
        elif value is False:
            out.append(Marker.FALSE)
        elif isinstance(value, int) and INT_MIN <= value <= INT_MAX:
            out.append(Marker.INTEGER)
            out += _u29(value & _U29_MAX)
        elif isinstance(value, (int, float)):
            out.append(Marker.DOUBLE)
            try:
                out += _DOUBLE.pack(float(value))
            except OverflowError:
                raise AmfEncodeError(f"AMF3: integer {value} does not fit a double") from None
        elif isinstance(value, XmlDocument):
            raw = self._utf8(value)
            if len(raw) > (_U29_MAX >> 1):
                raise AmfEncodeError("AMF3: XML document too long")
            out.append(Marker.XML_DOC)
            out += _u29((len(raw) << 1) | 1)
            out += raw
        elif isinstance(value, str):
            out.append(Marker.STRING)
            self.string(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            out.append(Marker.BYTE_ARRAY)
            out += _u29((len(raw) << 1) | 1)
            out += raw
        elif isinstance(value, AmfDate):
            out.append(Marker.DATE)
            out.append(0x01)
            out += _DOUBLE.pack(float(value.milliseconds))
        elif isinstance(value, EcmaArray):
            out.append(Marker.ARRAY)
            out.append(0x01)  # no dense part
            for k, v in value.items():
                self.key(k)
                self.value(v, depth + 1)
            out.append(0x01)
        elif isinstance(value, (list, tuple)):
            out.append(Marker.ARRAY)
            out += _u29((len(value) << 1) | 1)
            out.append(0x01)  # empty associative part
            for item in value:
                self.value(item, depth + 1)
        elif isinstance(value, (dict, TypedObject)):
            if isinstance(value, TypedObject):
                class_name, props = value.class_name, value.properties
            else:
                class_name, props = "", value
            # Inline traits, dynamic, no sealed members: U29O-traits = 0b1011 (AMF3 §3.12).
            out.append(Marker.OBJECT)
            out.append(0x0B)
            self.string(class_name)
            for k, v in props.items():
                self.key(k)
                self.value(v, depth + 1)
            out.append(0x01)
        else:
            raise AmfEncodeError(f"AMF3: cannot encode {type(value).__name__}")

    @staticmethod
    def _utf8(s: str) -> bytes:
        try:
            return s.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AmfEncodeError(f"AMF3: string is not encodable as UTF-8: {exc.reason}") from None


def encode(value: Any) -> bytes:
    """Encode one value as AMF3. Raises :class:`~mediasrv.rtmp.amf0.AmfEncodeError`."""
    enc = _Encoder()
    enc.value(value, 0)
    return bytes(enc.out)


def encode_all(values: Iterable[Any]) -> bytes:
    """Encode values back to back, sharing the string reference table."""
    enc = _Encoder()
    for value in values:
        enc.value(value, 0)
    return bytes(enc.out)
