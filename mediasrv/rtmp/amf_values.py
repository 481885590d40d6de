"""The values and errors AMF0 and AMF3 share: ``undefined``, ECMA arrays, XML documents,
dates, typed objects, the decoders' limits. Both codecs import these from here, so AMF0
(whose avmplus marker switches to AMF3, AMF0 §3.1) can import AMF3 without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import LocalProtocolError, RemoteProtocolError


#: Nesting limit of objects/arrays; far above anything an encoder sends (metadata is 2 deep).
DEFAULT_MAX_DEPTH = 64


#: Upper bound of values one decode call may produce, references counted with their size,
#: so a chain of shared references cannot describe an exponentially large tree.
DEFAULT_MAX_VALUES = 1_000_000


class AmfError(RemoteProtocolError):
    """Truncated, malformed or over-limit AMF data from the peer."""


class AmfEncodeError(LocalProtocolError):
    """A value that AMF cannot represent was given to an encoder (our bug, not the peer's)."""


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


#: The AMF ``undefined`` value (AMF0 §2.8, AMF3 §3.2). Distinct from ``None`` (null).
UNDEFINED: Any = _Sentinel("UNDEFINED")


#: The AMF0 ``unsupported`` marker value (AMF0 §2.14).
UNSUPPORTED: Any = _Sentinel("UNSUPPORTED")


class EcmaArray(dict):
    """An associative (ECMA) array: a ``dict`` that re-encodes as ECMA array (AMF0 §2.10).

    ``onMetaData`` is usually sent as one, and some tools only read it in that form.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EcmaArray({dict.__repr__(self)})"


class XmlDocument(str):
    """An XML document (AMF0 §2.17, AMF3 §3.9/§3.13): a ``str`` that keeps its AMF type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"XmlDocument({str.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class AmfDate:
    """A date (AMF0 §2.13): milliseconds since the Unix epoch (UTC) and a time zone.

    ``timezone`` is the reserved signed 16-bit field of AMF0 (should be 0); AMF3 has none.
    """

    milliseconds: float
    timezone: int = 0


@dataclass(frozen=True, slots=True)
class TypedObject:
    """An object with a registered class name (AMF0 §2.18, AMF3 traits with a class name)."""

    class_name: str
    properties: dict = field(default_factory=dict)
