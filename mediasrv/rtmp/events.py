"""Events that ``RtmpConnection.receive_data`` returns. All frozen dataclasses.

Timestamps are the RTMP message timestamps in milliseconds as the peer sent them
(32-bit, already combined with the extended timestamp and with deltas resolved);
unwrapping and normalisation are the media layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every RTMP event."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    """C2 received; the chunk stream starts. ``digest`` is True for the Flash-style C1."""

    digest: bool


@dataclass(frozen=True, slots=True)
class ConnectRequest(Event):
    """``connect`` command. Answer with ``accept_connect()`` or ``reject_connect()``."""

    transaction_id: float
    app: str
    tc_url: str
    #: The whole command object (flashVer, tcUrl, fourCcList, objectEncoding, ...).
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishRequest(Event):
    """``publish`` on a stream created by ``createStream``.

    ``name`` is the publishing name before any ``?``; ``query`` is what followed it
    (without the ``?``), e.g. for ``key?token=x`` name is ``key`` and query ``token=x``.
    Answer with ``accept_publish()`` or ``reject_publish()``.
    """

    stream_id: int
    transaction_id: float
    name: str
    query: str
    publish_type: str  # "live", "record" or "append"


@dataclass(frozen=True, slots=True)
class PlayRequest(Event):
    """``play``. Answer with ``accept_play()`` or ``reject_play()``."""

    stream_id: int
    transaction_id: float
    name: str
    query: str


@dataclass(frozen=True, slots=True)
class Unpublish(Event):
    """The publisher stopped cleanly (``FCUnpublish``, ``closeStream`` or ``deleteStream``
    on a publishing stream). Emitted once per publish."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PlayStop(Event):
    """A playing stream was closed by the client (``closeStream``/``deleteStream``)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class VideoData(Event):
    """Message type 9: one FLV video tag body."""

    stream_id: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class AudioData(Event):
    """Message type 8: one FLV audio tag body."""

    stream_id: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DataMessage(Event):
    """Message type 18/15 (AMF0/AMF3 data). ``@setDataFrame`` is unwrapped: for
    ``@setDataFrame("onMetaData", {...})`` name is ``onMetaData`` and values ``[{...}]``."""

    stream_id: int
    timestamp: int
    name: str
    values: list


@dataclass(frozen=True, slots=True)
class PingResponse(Event):
    """User control PingResponse (event type 7) to a ``ping()`` we sent."""

    timestamp: int
