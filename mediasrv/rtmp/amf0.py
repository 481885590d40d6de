"""AMF0 (Action Message Format 0) decoder and encoder.

Reference: Adobe "Action Message Format -- AMF 0" (2007), cited below as "AMF0 §x".

Python mapping (decode and encode):

=================  =========================================================
AMF0 type          Python
=================  =========================================================
number             ``float`` (``int`` encodes as number)
boolean            ``bool``
string             ``str`` (encodes as long string above 65535 UTF-8 bytes)
object             ``dict`` with ``str`` keys
null               ``None``
undefined          :data:`UNDEFINED`
unsupported        :data:`UNSUPPORTED`
reference          the referenced value (same Python object)
ECMA array         :class:`EcmaArray` (a ``dict`` subclass)
strict array       ``list`` (``tuple`` encodes as strict array too)
date               :class:`AmfDate`
long string        ``str``
XML document       :class:`XmlDocument` (a ``str`` subclass)
typed object       :class:`TypedObject`
AVM+ switch        the decoded AMF3 value (see :mod:`mediasrv.rtmp.amf3`)
=================  =========================================================

The decoder never trusts a length: every count is checked against the remaining bytes,
nesting depth and the number of decoded values are capped, references may only point at
complete values (no cycles) and every failure is an :class:`AmfError`.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any, Iterable

from . import amf3
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

__all__ = [
    "Marker",
    "AmfError",
    "AmfEncodeError",
    "UNDEFINED",
    "UNSUPPORTED",
    "EcmaArray",
    "AmfDate",
    "XmlDocument",
    "TypedObject",
    "decode",
    "decode_all",
    "encode",
    "encode_all",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_VALUES",
]



class Marker(IntEnum):
    """AMF0 type markers (AMF0 §2.1)."""

    NUMBER = 0x00
    BOOLEAN = 0x01
    STRING = 0x02
    OBJECT = 0x03
    MOVIECLIP = 0x04  # reserved, not supported
    NULL = 0x05
    UNDEFINED = 0x06
    REFERENCE = 0x07
    ECMA_ARRAY = 0x08
    OBJECT_END = 0x09
    STRICT_ARRAY = 0x0A
    DATE = 0x0B
    LONG_STRING = 0x0C
    UNSUPPORTED = 0x0D
    RECORDSET = 0x0E  # reserved, not supported
    XML_DOCUMENT = 0x0F
    TYPED_OBJECT = 0x10
    AVMPLUS_OBJECT = 0x11


















_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class _Decoder:
    """One decode pass over a buffer: position, depth and the reference table (AMF0 §2.9)."""

    __slots__ = ("data", "pos", "end", "depth", "max_depth", "values", "max_values",
                 "refs", "ref_sizes")

    def __init__(self, data: bytes | bytearray | memoryview, offset: int,
                 max_depth: int, max_values: int) -> None:
        self.data = data
        self.pos = offset
        self.end = len(data)
        self.depth = 0
        self.max_depth = max_depth
        self.values = 0
        self.max_values = max_values
        #: complex values in order of appearance; None while one is still being built
        self.refs: list[Any] = []
        #: number of values inside each complete referenced value (for the value budget)
        self.ref_sizes: list[int] = []

    # -- primitives ---------------------------------------------------------------------

    def need(self, n: int) -> None:
        if self.end - self.pos < n:
            raise AmfError(f"AMF0: truncated data (need {n} bytes at offset {self.pos}, "
                           f"{self.end - self.pos} left)")

    def u8(self) -> int:
        self.need(1)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        self.need(2)
        (v,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return v

    def u32(self) -> int:
        self.need(4)
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def double(self) -> float:
        self.need(8)
        (v,) = _DOUBLE.unpack_from(self.data, self.pos)
        self.pos += 8
        return v

    def utf8(self, n: int) -> str:
        self.need(n)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError(f"AMF0: invalid UTF-8 in string: {exc.reason}") from None

    def short_string(self) -> str:
        return self.utf8(self.u16())

    def count(self) -> None:
        self.values += 1
        if self.values > self.max_values:
            raise AmfError(f"AMF0: more than {self.max_values} values")

    # -- values -------------------------------------------------------------------------

    def value(self) -> Any:
        marker = self.u8()
        self.count()
        if marker == Marker.NUMBER:
            return self.double()
        if marker == Marker.BOOLEAN:
            return self.u8() != 0
        if marker == Marker.STRING:
            return self.short_string()
        if marker == Marker.NULL:
            return None
        if marker == Marker.UNDEFINED:
            return UNDEFINED
        if marker == Marker.OBJECT:
            return self.complex(self.properties_into, {})
        if marker == Marker.ECMA_ARRAY:
            # The associative count is a hint only (AMF0 §2.10); encoders get it wrong,
            # so the object-end marker is what ends the array.
            self.u32()
            return self.complex(self.properties_into, EcmaArray())
        if marker == Marker.STRICT_ARRAY:
            return self.complex(self.strict_array_into, [])
        if marker == Marker.TYPED_OBJECT:
            class_name = self.short_string()
            return self.complex(self.typed_into, TypedObject(class_name, {}))
        if marker == Marker.REFERENCE:
            return self.reference()
        if marker == Marker.DATE:
            self.need(10)
            ms, tz = _DATE.unpack_from(self.data, self.pos)
            self.pos += 10
            return AmfDate(ms, tz)
        if marker == Marker.LONG_STRING:
            return self.utf8(self.u32())
        if marker == Marker.XML_DOCUMENT:
            return XmlDocument(self.utf8(self.u32()))
        if marker == Marker.UNSUPPORTED:
            return UNSUPPORTED
        if marker == Marker.AVMPLUS_OBJECT:
            return self.avmplus()
        if marker == Marker.OBJECT_END:
            raise AmfError("AMF0: object-end marker outside an object")
        raise AmfError(f"AMF0: unsupported type marker 0x{marker:02x}")

    def complex(self, fill, container):
        """Register a complex value in the reference table, then fill it (AMF0 §2.9)."""
        if self.depth >= self.max_depth:
            raise AmfError(f"AMF0: nesting deeper than {self.max_depth}")
        index = len(self.refs)
        self.refs.append(None)  # placeholder: a reference to it now would be a cycle
        self.ref_sizes.append(0)
        before = self.values
        self.depth += 1
        fill(container)
        self.depth -= 1
        self.refs[index] = container
        self.ref_sizes[index] = self.values - before
        return container

    def properties_into(self, target: dict) -> None:
        # Object properties: UTF-8 key, value, ... then an empty key + object-end marker
        # (AMF0 §2.5, §2.11).
        while True:
            key = self.short_string()
            if key == "":
                self.need(1)
                if self.data[self.pos] == Marker.OBJECT_END:
                    self.pos += 1
                    return
            target[key] = self.value()

    def typed_into(self, target: TypedObject) -> None:
        self.properties_into(target.properties)

    def strict_array_into(self, target: list) -> None:
        n = self.u32()
        # Every element takes at least one byte (its marker): a count larger than the
        # remaining bytes is a lie, refuse it before allocating anything (AMF0 §2.12).
        if n > self.end - self.pos:
            raise AmfError(f"AMF0: strict array of {n} elements in {self.end - self.pos} bytes")
        append = target.append
        for _ in range(n):
            append(self.value())

    def reference(self) -> Any:
        index = self.u16()
        if index >= len(self.refs):
            raise AmfError(f"AMF0: reference {index} to an unknown object")
        value = self.refs[index]
        if value is None:
            raise AmfError(f"AMF0: reference {index} to an object under construction")
        self.values += self.ref_sizes[index]
        if self.values > self.max_values:
            raise AmfError(f"AMF0: more than {self.max_values} values")
        return value

    def avmplus(self) -> Any:
        # AMF0 §3.1: the rest of this value is AMF3, with fresh AMF3 reference tables.
        if self.depth >= self.max_depth:
            raise AmfError(f"AMF0: nesting deeper than {self.max_depth}")
        value, self.pos, used = amf3.decode_with_budget(
            self.data, self.pos,
            max_depth=self.max_depth - self.depth,
            max_values=self.max_values - self.values,
        )
        self.values += used
        return value


def decode(data: bytes | bytearray | memoryview, offset: int = 0, *,
           max_depth: int = DEFAULT_MAX_DEPTH,
           max_values: int = DEFAULT_MAX_VALUES) -> tuple[Any, int]:
    """Decode one AMF0 value at ``offset``; return ``(value, offset_after)``.

    Raises :class:`AmfError` on truncated, malformed or over-limit input.
    """
    dec = _Decoder(data, offset, max_depth, max_values)
    value = dec.value()
    return value, dec.pos


def decode_all(data: bytes | bytearray | memoryview, offset: int = 0, *,
               max_depth: int = DEFAULT_MAX_DEPTH,
               max_values: int = DEFAULT_MAX_VALUES) -> list[Any]:
    """Decode consecutive AMF0 values up to the end of ``data`` (e.g. a command body).

    The values share one reference table, as they do in one RTMP message.
    Raises :class:`AmfError` on truncated, malformed or over-limit input.
    """
    dec = _Decoder(data, offset, max_depth, max_values)
    out = []
    while dec.pos < dec.end:
        out.append(dec.value())
    return out


# -- encoding ---------------------------------------------------------------------------


def _encode_utf8(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AmfEncodeError(f"AMF0: string is not encodable as UTF-8: {exc.reason}") from None


def _encode_key(out: bytearray, key: Any) -> None:
    if not isinstance(key, str):
        raise AmfEncodeError(f"AMF0: object keys must be str, not {type(key).__name__}")
    raw = _encode_utf8(key)
    if len(raw) > 0xFFFF:
        raise AmfEncodeError("AMF0: object key longer than 65535 bytes")
    # An empty key is unambiguous: the end sequence is an empty key followed by the
    # object-end marker (AMF0 §2.11), which no value starts with.
    out += _U16.pack(len(raw))
    out += raw


def _encode_properties(out: bytearray, props: dict, depth: int) -> None:
    for key, val in props.items():
        _encode_key(out, key)
        _encode_value(out, val, depth)
    out += b"\x00\x00\x09"


def _encode_value(out: bytearray, value: Any, depth: int) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise AmfEncodeError(f"AMF0: nesting deeper than {DEFAULT_MAX_DEPTH} (a cycle?)")
    if value is None:
        out.append(Marker.NULL)
    elif value is UNDEFINED:
        out.append(Marker.UNDEFINED)
    elif value is UNSUPPORTED:
        out.append(Marker.UNSUPPORTED)
    elif isinstance(value, bool):
        out.append(Marker.BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, (int, float)):
        out.append(Marker.NUMBER)
        try:
            out += _DOUBLE.pack(float(value))
        except OverflowError:
            raise AmfEncodeError(f"AMF0: integer {value} does not fit a double") from None
    elif isinstance(value, XmlDocument):
        raw = _encode_utf8(value)
        if len(raw) > 0xFFFFFFFF:
            raise AmfEncodeError("AMF0: XML document longer than 4 GiB")
        out.append(Marker.XML_DOCUMENT)
        out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, str):
        raw = _encode_utf8(value)
        if len(raw) <= 0xFFFF:
            out.append(Marker.STRING)
            out += _U16.pack(len(raw))
        elif len(raw) <= 0xFFFFFFFF:
            out.append(Marker.LONG_STRING)  # AMF0 §2.14: strings over 65535 bytes
            out += _U32.pack(len(raw))
        else:
            raise AmfEncodeError("AMF0: string longer than 4 GiB")
        out += raw
    elif isinstance(value, EcmaArray):
        out.append(Marker.ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_properties(out, value, depth + 1)
    elif isinstance(value, dict):
        out.append(Marker.OBJECT)
        _encode_properties(out, value, depth + 1)
    elif isinstance(value, (list, tuple)):
        out.append(Marker.STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_value(out, item, depth + 1)
    elif isinstance(value, AmfDate):
        out.append(Marker.DATE)
        try:
            out += _DATE.pack(float(value.milliseconds), value.timezone)
        except (struct.error, OverflowError, TypeError) as exc:
            raise AmfEncodeError(f"AMF0: bad date {value!r}: {exc}") from None
    elif isinstance(value, TypedObject):
        name = _encode_utf8(value.class_name)
        if len(name) > 0xFFFF:
            raise AmfEncodeError("AMF0: class name longer than 65535 bytes")
        out.append(Marker.TYPED_OBJECT)
        out += _U16.pack(len(name))
        out += name
        _encode_properties(out, value.properties, depth + 1)
    else:
        raise AmfEncodeError(f"AMF0: cannot encode {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Encode one value as AMF0. Raises :class:`AmfEncodeError` for unsupported values."""
    out = bytearray()
    _encode_value(out, value, 0)
    return bytes(out)


def encode_all(values: Iterable[Any]) -> bytes:
    """Encode a sequence of values back to back (the body of a command or data message)."""
    out = bytearray()
    for value in values:
        _encode_value(out, value, 0)
    return bytes(out)
