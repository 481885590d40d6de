"""``RtmpConnection``: the server side of one RTMP connection as a sans-IO state machine.

Bytes in (:meth:`RtmpConnection.receive_data`) → events out; decisions that belong to the
application (accept or reject a connect, publish or play) are commands that queue output;
:meth:`RtmpConnection.data_to_send` drains it. What needs no decision is answered here:
acknowledgements, ping responses, ``releaseStream``/``FCPublish``/``createStream`` and
the other housekeeping commands of Flash-lineage clients (OBS, FFmpeg, GStreamer, ...).

Two state machines, each with all its transitions in one table:

* the connection (:class:`ConnectionState`, ``_CONNECTION_TRANSITIONS``);
* each NetStream made by ``createStream`` (:class:`StreamState`, ``_STREAM_TRANSITIONS``),
  whose entries also name the side effect of the transition.

A peer input missing from a table is a :class:`RemoteProtocolError`; a local command
missing from a table is a :class:`LocalProtocolError`, except when the peer has already
withdrawn what the command answers (closed or deleted the stream while the application was
deciding): then the command does nothing and returns ``False``.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Any, Callable

from . import messages as m
from .amf0 import UNDEFINED, EcmaArray
from .chunk import ChunkReader, ChunkWriter
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    AudioData,
    ConnectRequest,
    DataMessage,
    Event,
    HandshakeComplete,
    PingResponse,
    PlayRequest,
    PlayStop,
    PublishRequest,
    Unpublish,
    VideoData,
)
from .handshake import ServerHandshake
from .messages import ChunkStreamId as Csid
from .messages import MessageType as T
from .messages import UserControlEvent as UC

__all__ = ["RtmpConnection", "ConnectionState", "StreamState", "ACCEPTED_FOURCCS",
           "DEFAULT_WINDOW_ACK_SIZE", "MAX_STREAMS"]

#: The peer's acknowledgement window until it sends Window Acknowledgement Size.
DEFAULT_WINDOW_ACK_SIZE = 2_500_000
#: createStream calls allowed per connection (encoders and players need one).
MAX_STREAMS = 16
#: Codecs we accept, echoed as ``fourCcList`` to Enhanced RTMP clients (E-RTMP v2,
#: "Enhancing NetConnection connect Command").
ACCEPTED_FOURCCS = ("avc1", "hvc1", "av01", "vp09", "mp4a")


class _KeyEnum(Enum):
    """An Enum hashed by identity: members are the keys of the transition tables, looked
    up for every audio/video message. Enum's own ``__hash__`` is a Python-level function
    (``hash(self._name_)``), several times the cost of the lookup itself; members compare
    by identity anyway, so the identity hash is consistent with equality."""

    __hash__ = object.__hash__


class ConnectionState(_KeyEnum):
    """States of an :class:`RtmpConnection`."""

    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "await connect"  # handshake done, no connect yet
    CONNECT_PENDING = "connect pending"  # ConnectRequest emitted, the application decides
    CONNECTED = "connected"
    REJECTED = "rejected"  # connect refused: the adapter closes after flushing
    ERROR = "error"  # a protocol error happened: the connection is dead


class StreamState(_KeyEnum):
    """States of one NetStream (a message stream id made by ``createStream``)."""

    IDLE = "idle"
    PUBLISH_PENDING = "publish pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play pending"
    PLAYING = "playing"
    DELETED = "deleted"


class _In(_KeyEnum):
    """Inputs of the connection machine."""

    HANDSHAKE_DONE = "handshake done"
    CONNECT = "connect"
    ACCEPT_CONNECT = "accept_connect"
    REJECT_CONNECT = "reject_connect"
    COMMAND = "command"  # any command but connect
    MEDIA = "media"  # audio, video, data, aggregate
    CONTROL = "control"  # protocol/user control messages
    SEND = "send"  # local stream commands (accept_publish, send_video, ...)
    PING = "send_ping"


class _Next(_KeyEnum):
    PROCEED = "proceed"
    IGNORE = "ignore"


S = ConnectionState
_CONNECTION_TRANSITIONS: dict[tuple[ConnectionState, _In], tuple[ConnectionState, _Next]] = {
    (S.HANDSHAKE, _In.HANDSHAKE_DONE): (S.AWAIT_CONNECT, _Next.PROCEED),
    (S.AWAIT_CONNECT, _In.CONNECT): (S.CONNECT_PENDING, _Next.PROCEED),
    (S.AWAIT_CONNECT, _In.CONTROL): (S.AWAIT_CONNECT, _Next.PROCEED),
    (S.AWAIT_CONNECT, _In.PING): (S.AWAIT_CONNECT, _Next.PROCEED),
    (S.CONNECT_PENDING, _In.ACCEPT_CONNECT): (S.CONNECTED, _Next.PROCEED),
    (S.CONNECT_PENDING, _In.REJECT_CONNECT): (S.REJECTED, _Next.PROCEED),
    (S.CONNECT_PENDING, _In.CONTROL): (S.CONNECT_PENDING, _Next.PROCEED),
    (S.CONNECT_PENDING, _In.PING): (S.CONNECT_PENDING, _Next.PROCEED),
    (S.CONNECTED, _In.COMMAND): (S.CONNECTED, _Next.PROCEED),
    (S.CONNECTED, _In.MEDIA): (S.CONNECTED, _Next.PROCEED),
    (S.CONNECTED, _In.CONTROL): (S.CONNECTED, _Next.PROCEED),
    (S.CONNECTED, _In.SEND): (S.CONNECTED, _Next.PROCEED),
    (S.CONNECTED, _In.PING): (S.CONNECTED, _Next.PROCEED),
    # After a rejection the client only has to read our _error; whatever it still sends
    # before it closes is ignored.
    (S.REJECTED, _In.COMMAND): (S.REJECTED, _Next.IGNORE),
    (S.REJECTED, _In.CONNECT): (S.REJECTED, _Next.IGNORE),
    (S.REJECTED, _In.MEDIA): (S.REJECTED, _Next.IGNORE),
    (S.REJECTED, _In.CONTROL): (S.REJECTED, _Next.PROCEED),
}
del S

#: Peer inputs of the connection machine (the rest are local commands).
_PEER_INPUTS = frozenset({_In.HANDSHAKE_DONE, _In.CONNECT, _In.COMMAND, _In.MEDIA, _In.CONTROL})


class _SIn(_KeyEnum):
    """Inputs of a stream machine."""

    # from the peer
    PUBLISH = "publish"
    PLAY = "play"
    FC_UNPUBLISH = "FCUnpublish"
    CLOSE = "closeStream"
    DELETE = "deleteStream"
    MEDIA = "media"
    # local
    ACCEPT_PUBLISH = "accept_publish"
    REJECT_PUBLISH = "reject_publish"
    ACCEPT_PLAY = "accept_play"
    REJECT_PLAY = "reject_play"
    SEND_STATUS = "send_status"
    SEND_MEDIA = "send media"


_PEER_STREAM_INPUTS = frozenset({_SIn.PUBLISH, _SIn.PLAY, _SIn.FC_UNPUBLISH, _SIn.CLOSE,
                                 _SIn.DELETE, _SIn.MEDIA})
#: Peer inputs that take back what the application may be answering.
_WITHDRAWING = frozenset({_SIn.FC_UNPUBLISH, _SIn.CLOSE, _SIn.DELETE})


class _Do(_KeyEnum):
    """Side effect of a stream transition."""

    NOTHING = "nothing"
    DELIVER = "deliver"  # media/data become events
    DROP = "drop"  # media silently dropped (stragglers after unpublish, player's media)
    UNPUBLISH = "emit Unpublish"
    PLAY_STOP = "emit PlayStop"


def _stream_table() -> dict[tuple[StreamState, _SIn], tuple[StreamState, _Do]]:
    st, i, d = StreamState, _SIn, _Do
    table = {
        (st.IDLE, i.PUBLISH): (st.PUBLISH_PENDING, d.NOTHING),
        (st.IDLE, i.PLAY): (st.PLAY_PENDING, d.NOTHING),
        (st.IDLE, i.CLOSE): (st.IDLE, d.NOTHING),
        (st.IDLE, i.DELETE): (st.DELETED, d.NOTHING),
        (st.IDLE, i.MEDIA): (st.IDLE, d.DROP),
        (st.IDLE, i.SEND_STATUS): (st.IDLE, d.NOTHING),
        # Media sent before our answer is delivered: encoders that do not wait for
        # NetStream.Publish.Start send the sequence headers there, and those must not be
        # lost. The adapter holds them until it decides.
        (st.PUBLISH_PENDING, i.MEDIA): (st.PUBLISH_PENDING, d.DELIVER),
        (st.PUBLISH_PENDING, i.ACCEPT_PUBLISH): (st.PUBLISHING, d.NOTHING),
        (st.PUBLISH_PENDING, i.REJECT_PUBLISH): (st.IDLE, d.NOTHING),
        (st.PUBLISH_PENDING, i.FC_UNPUBLISH): (st.IDLE, d.UNPUBLISH),
        (st.PUBLISH_PENDING, i.CLOSE): (st.IDLE, d.UNPUBLISH),
        (st.PUBLISH_PENDING, i.DELETE): (st.DELETED, d.UNPUBLISH),
        (st.PUBLISH_PENDING, i.SEND_STATUS): (st.PUBLISH_PENDING, d.NOTHING),
        (st.PUBLISHING, i.MEDIA): (st.PUBLISHING, d.DELIVER),
        (st.PUBLISHING, i.FC_UNPUBLISH): (st.IDLE, d.UNPUBLISH),
        (st.PUBLISHING, i.CLOSE): (st.IDLE, d.UNPUBLISH),
        (st.PUBLISHING, i.DELETE): (st.DELETED, d.UNPUBLISH),
        (st.PUBLISHING, i.SEND_STATUS): (st.PUBLISHING, d.NOTHING),
        (st.PLAY_PENDING, i.MEDIA): (st.PLAY_PENDING, d.DROP),
        (st.PLAY_PENDING, i.ACCEPT_PLAY): (st.PLAYING, d.NOTHING),
        (st.PLAY_PENDING, i.REJECT_PLAY): (st.IDLE, d.NOTHING),
        (st.PLAY_PENDING, i.CLOSE): (st.IDLE, d.PLAY_STOP),
        (st.PLAY_PENDING, i.DELETE): (st.DELETED, d.PLAY_STOP),
        (st.PLAY_PENDING, i.SEND_STATUS): (st.PLAY_PENDING, d.NOTHING),
        (st.PLAYING, i.MEDIA): (st.PLAYING, d.DROP),
        (st.PLAYING, i.SEND_MEDIA): (st.PLAYING, d.NOTHING),
        (st.PLAYING, i.CLOSE): (st.IDLE, d.PLAY_STOP),
        (st.PLAYING, i.DELETE): (st.DELETED, d.PLAY_STOP),
        (st.PLAYING, i.SEND_STATUS): (st.PLAYING, d.NOTHING),
        (st.DELETED, i.MEDIA): (st.DELETED, d.DROP),
        (st.DELETED, i.CLOSE): (st.DELETED, d.NOTHING),
        (st.DELETED, i.DELETE): (st.DELETED, d.NOTHING),
    }
    return table


_STREAM_TRANSITIONS = _stream_table()

# Media is most of what a connection receives (every audio and video message). Where the
# tables say a media message changes nothing and proceeds/delivers, ``_media`` checks
# membership in these sets instead of applying both transitions; derived from the tables
# so they stay the one place where the rules are written.
_CONN_MEDIA_PROCEEDS = frozenset(
    state for (state, inp), (new, nxt) in _CONNECTION_TRANSITIONS.items()
    if inp is _In.MEDIA and new is state and nxt is _Next.PROCEED)
_STREAM_MEDIA_DELIVERS = frozenset(
    state for (state, inp), (new, do) in _STREAM_TRANSITIONS.items()
    if inp is _SIn.MEDIA and new is state and do is _Do.DELIVER)
# Plain module constants for the per-message paths: on CPython 3.11 ``Enum.MEMBER`` is an
# unspecialised class attribute look-up (~60 ns), a module global ~5 ns.
_VIDEO = int(T.VIDEO)
_AUDIO = int(T.AUDIO)
_ERROR = ConnectionState.ERROR


class _Stream:
    __slots__ = ("id", "state", "name", "withdrawn")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.state = StreamState.IDLE
        self.name = ""
        #: The peer closed/deleted the stream since its last publish/play request.
        self.withdrawn = False


def _split_name(raw: str) -> tuple[str, str]:
    name, _, query = raw.partition("?")
    return name, query


class RtmpConnection:
    """Server side of one RTMP connection. See the module docstring.

    ``random_bytes`` supplies the handshake's random bytes (inject a deterministic one in
    tests). Limits: ``max_message_size`` caps any message the peer announces.
    """

    def __init__(self, *, max_message_size: int = 8 * 1024 * 1024,
                 out_chunk_size: int = 4096, window_ack_size: int = 2_500_000,
                 peer_bandwidth: int = 2_500_000,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        if not 1 <= out_chunk_size <= 0x7FFFFFFF:
            raise LocalProtocolError(f"invalid out_chunk_size {out_chunk_size}")
        self._state = ConnectionState.HANDSHAKE
        self._handshake: ServerHandshake | None = ServerHandshake(random_bytes)
        self._reader = ChunkReader(max_message_size=max_message_size)
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._out_chunk_size = out_chunk_size
        self._window_ack_size = window_ack_size
        self._peer_bandwidth = peer_bandwidth
        self._bytes_received = 0
        self._bytes_sent = 0
        self._peer_window = DEFAULT_WINDOW_ACK_SIZE
        self._last_ack = 0
        self._error: RemoteProtocolError | None = None
        self._connect_tid = 0.0
        self._connect_props: dict = {}
        self._streams: dict[int, _Stream] = {}
        self._next_stream_id = 1

    # -- read-only stats ----------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._state

    @property
    def bytes_received(self) -> int:
        """Bytes given to :meth:`receive_data`, handshake included."""
        return self._bytes_received

    @property
    def bytes_sent(self) -> int:
        """Bytes handed out by :meth:`data_to_send`."""
        return self._bytes_sent

    def stream_state(self, stream_id: int) -> StreamState | None:
        """State of a NetStream, ``None`` if ``createStream`` never made it."""
        stream = self._streams.get(stream_id)
        return stream.state if stream else None

    # -- state machines -----------------------------------------------------------------

    def _conn(self, inp: _In) -> bool:
        """Apply a connection input; False means "ignore it"."""
        try:
            new, nxt = _CONNECTION_TRANSITIONS[(self._state, inp)]
        except KeyError:
            if inp in _PEER_INPUTS:
                raise RemoteProtocolError(
                    f"{inp.value} not allowed in state {self._state.value}") from None
            raise LocalProtocolError(
                f"{inp.value} not allowed in state {self._state.value}") from None
        self._state = new
        return nxt is _Next.PROCEED

    def _stream(self, stream: _Stream, inp: _SIn) -> _Do | None:
        """Apply a stream input; returns its side effect, or ``None`` when a local
        command answers something the peer already withdrew."""
        try:
            new, do = _STREAM_TRANSITIONS[(stream.state, inp)]
        except KeyError:
            if inp in _PEER_STREAM_INPUTS:
                raise RemoteProtocolError(
                    f"{inp.value} on stream {stream.id} in state {stream.state.value}") from None
            if stream.withdrawn:
                return None
            raise LocalProtocolError(
                f"{inp.value} on stream {stream.id} in state {stream.state.value}") from None
        stream.state = new
        if inp in _WITHDRAWING:
            stream.withdrawn = True
        elif inp is _SIn.PUBLISH or inp is _SIn.PLAY:
            stream.withdrawn = False
        return do

    def _check_alive(self) -> None:
        if self._state is ConnectionState.ERROR:
            raise LocalProtocolError(f"the connection failed: {self._error}")

    # -- input --------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; return the events they complete, in order.

        Raises :class:`RemoteProtocolError` on any protocol violation or exceeded limit;
        the connection is then dead (further calls raise too) and the events of this
        call are lost: close the connection.
        """
        if self._state is _ERROR:
            raise RemoteProtocolError(f"the connection already failed: {self._error}")
        self._bytes_received += len(data)
        events: list[Event] = []
        try:
            if self._handshake is not None:
                rest = self._handshake.receive_data(data)
                self._out += self._handshake.data_to_send()
                if rest is None:
                    return events
                digest = self._handshake.digest
                self._handshake = None
                self._conn(_In.HANDSHAKE_DONE)
                events.append(HandshakeComplete(digest=digest))
                data = rest
            reader = self._reader
            reader.feed(data)
            # The message's fields as a tuple, not a chunk.Message: nothing keeps them.
            while (fields := reader.next_fields()) is not None:
                self._dispatch(fields, events)
            self._acknowledge()
        except RemoteProtocolError as exc:
            self._state = ConnectionState.ERROR
            self._error = exc
            raise
        return events

    def _acknowledge(self) -> None:
        # §5.4.3: acknowledge after receiving a window's worth of bytes. One ack per
        # call, carrying the total so far, is enough however many windows the call held.
        if self._bytes_received - self._last_ack >= self._peer_window:
            self._last_ack = self._bytes_received
            self._send(Csid.CONTROL, T.ACK, 0, m.acknowledgement(self._bytes_received))

    def _dispatch(self, fields: tuple[int, int, int, int, bytes], events: list[Event]) -> None:
        _, t, stream_id, timestamp, payload = fields  # ChunkReader.next_fields
        if t == _VIDEO or t == _AUDIO:
            self._media(stream_id, t, timestamp, payload, events)
        elif t == T.COMMAND_AMF0 or t == T.COMMAND_AMF3:
            self._command(stream_id, m.parse_command(payload, amf3=t == T.COMMAND_AMF3), events)
        elif t == T.DATA_AMF0 or t == T.DATA_AMF3:
            self._media(stream_id, t, timestamp, payload, events)
        elif t == T.AGGREGATE:
            if self._conn(_In.MEDIA):
                for sub in m.split_aggregate(payload, timestamp):
                    self._media(stream_id, sub.type_id, sub.timestamp, sub.payload, events)
        elif t <= T.SET_PEER_BANDWIDTH:
            self._control(t, payload, events)
        # Shared objects (16, 19) and unknown types: nothing to do with them.

    def _control(self, t: int, payload: bytes, events: list[Event]) -> None:
        self._conn(_In.CONTROL)
        if t == T.WINDOW_ACK_SIZE:
            size = m.parse_u32(payload, "Window Acknowledgement Size")
            if size == 0:
                raise RemoteProtocolError("Window Acknowledgement Size of 0")
            self._peer_window = size
        elif t == T.USER_CONTROL:
            uc = m.parse_user_control(payload)
            if uc.event == UC.PING_REQUEST:
                self._send(Csid.CONTROL, T.USER_CONTROL, 0,
                           m.user_control(UC.PING_RESPONSE, uc.value))
            elif uc.event == UC.PING_RESPONSE:
                events.append(PingResponse(timestamp=uc.value))
            # SetBufferLength and the rest: nothing to do for a live server.
        elif t == T.SET_PEER_BANDWIDTH:
            m.parse_set_peer_bandwidth(payload)  # validated; a server ignores it
        elif t == T.ACK:
            m.parse_u32(payload, "Acknowledgement")
        # Set Chunk Size and Abort were applied by the chunk reader.

    def _media(self, stream_id: int, t: int, timestamp: int, payload: bytes,
               events: list[Event]) -> None:
        stream = self._streams.get(stream_id)
        if (stream is None or self._state not in _CONN_MEDIA_PROCEEDS
                or stream.state not in _STREAM_MEDIA_DELIVERS):
            # Anything but the common case goes through both tables.
            if not self._conn(_In.MEDIA):
                return
            if stream is None:
                if stream_id == 0 and (t == T.DATA_AMF0 or t == T.DATA_AMF3):
                    return  # stray data on the connection's stream 0: no stream to give it to
                raise RemoteProtocolError(f"message of type {t} on stream {stream_id}, "
                                          "which was not created")
            if self._stream(stream, _SIn.MEDIA) is not _Do.DELIVER:
                return
        if t == _VIDEO:
            events.append(VideoData(stream_id, timestamp, payload))
        elif t == _AUDIO:
            events.append(AudioData(stream_id, timestamp, payload))
        else:
            name, values = m.parse_data(payload, amf3=t == T.DATA_AMF3)
            events.append(DataMessage(stream_id, timestamp, name, values))

    # -- commands -------------------------------------------------------------------------

    def _command(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        if cmd.name == "connect":
            if self._conn(_In.CONNECT):
                self._on_connect(cmd, events)
            return
        if not self._conn(_In.COMMAND):
            return
        handler = _COMMAND_HANDLERS.get(cmd.name)
        if handler is not None:
            handler(self, stream_id, cmd, events)
        elif cmd.transaction_id:
            # Unknown method with a transaction id: answer like FMS does, so a client
            # waiting for the answer does not hang; clients treat it as a failed call.
            self._send_command(0, "_error", cmd.transaction_id, None, m.status_object(
                "error", "NetConnection.Call.Failed", f"Method not found ({cmd.name})."))
        # Unknown method without a transaction id: a notification, ignore it.

    def _on_connect(self, cmd: m.Command, events: list[Event]) -> None:
        props = cmd.command_object
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise RemoteProtocolError("connect command object is not an object")
        app = props.get("app", "")
        tc_url = props.get("tcUrl", "")
        self._connect_tid = cmd.transaction_id
        self._connect_props = props
        events.append(ConnectRequest(
            transaction_id=cmd.transaction_id,
            app=app if isinstance(app, str) else "",
            tc_url=tc_url if isinstance(tc_url, str) else "",
            properties=props,
        ))

    def _result(self, cmd: m.Command, *values: Any) -> None:
        if cmd.transaction_id:
            self._send_command(0, "_result", cmd.transaction_id, None, *values)

    def _cmd_result_undefined(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        # releaseStream, _checkbw, FCSubscribe, ...: nothing to do, but the client may
        # track the call, so answer it.
        self._result(cmd, UNDEFINED)

    def _cmd_ignore(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        pass

    def _cmd_fc_publish(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        name = cmd.arguments[0] if cmd.arguments and isinstance(cmd.arguments[0], str) else ""
        self._result(cmd, UNDEFINED)
        # nginx-rtmp answers FCPublish with onFCPublish; Flash-lineage encoders expect it.
        self._send_command(0, "onFCPublish", 0, None, m.status_object(
            "status", "NetStream.Publish.Start", f"FCPublish to stream {_split_name(name)[0]}."))

    def _cmd_create_stream(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        if self._next_stream_id > MAX_STREAMS:
            raise RemoteProtocolError(f"more than {MAX_STREAMS} createStream calls")
        sid = self._next_stream_id
        self._next_stream_id += 1
        self._streams[sid] = _Stream(sid)
        self._result(cmd, float(sid))

    def _created(self, stream_id: int, what: str) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise RemoteProtocolError(f"{what} on stream {stream_id}, which was not created")
        return stream

    def _cmd_publish(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        stream = self._created(stream_id, "publish")
        args = cmd.arguments
        if not args or not isinstance(args[0], str):
            raise RemoteProtocolError("publish without a stream name")
        publish_type = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
        self._stream(stream, _SIn.PUBLISH)
        name, query = _split_name(args[0])
        stream.name = name
        events.append(PublishRequest(stream_id, cmd.transaction_id, name, query, publish_type))

    def _cmd_play(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        stream = self._created(stream_id, "play")
        args = cmd.arguments
        if not args or not isinstance(args[0], str):
            raise RemoteProtocolError("play without a stream name")
        self._stream(stream, _SIn.PLAY)
        name, query = _split_name(args[0])
        stream.name = name
        events.append(PlayRequest(stream_id, cmd.transaction_id, name, query))

    def _stop(self, stream: _Stream, inp: _SIn, events: list[Event]) -> None:
        do = self._stream(stream, inp)
        if do is _Do.UNPUBLISH:
            events.append(Unpublish(stream.id))
            if stream.state is not StreamState.DELETED:
                self._send_status(stream.id, "status", "NetStream.Unpublish.Success",
                                  f"{stream.name} is now unpublished.", details=stream.name)
        elif do is _Do.PLAY_STOP:
            events.append(PlayStop(stream.id))

    def _cmd_fc_unpublish(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        # FCUnpublish is a NetConnection call (stream 0) naming the stream.
        raw = cmd.arguments[0] if cmd.arguments and isinstance(cmd.arguments[0], str) else None
        name = _split_name(raw)[0] if raw is not None else None
        for stream in self._streams.values():
            if stream.state in (StreamState.PUBLISHING, StreamState.PUBLISH_PENDING) and (
                    name is None or stream.name == name):
                self._stop(stream, _SIn.FC_UNPUBLISH, events)
                break
        self._result(cmd, UNDEFINED)

    def _cmd_close_stream(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._stop(stream, _SIn.CLOSE, events)

    def _cmd_delete_stream(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        # deleteStream is a NetConnection call whose argument is the stream id (§7.2.2.3).
        target = stream_id
        if cmd.arguments and isinstance(cmd.arguments[0], (int, float)) and not isinstance(
                cmd.arguments[0], bool):
            value = cmd.arguments[0]
            if value == value and 0 <= value < 2**32:  # not NaN, in range
                target = int(value)
        stream = self._streams.get(target)
        if stream is not None:
            self._stop(stream, _SIn.DELETE, events)

    def _cmd_get_stream_length(self, stream_id: int, cmd: m.Command, events: list[Event]) -> None:
        self._result(cmd, 0.0)  # live: no length

    # -- local commands -------------------------------------------------------------------

    def accept_connect(self, properties: dict | None = None) -> None:
        """Accept the pending ``connect``.

        Queues Window Acknowledgement Size, Set Peer Bandwidth (dynamic), Set Chunk Size
        and the ``_result`` (NetConnection.Connect.Success). ``properties`` are merged
        into the result's properties object (fmsVer, capabilities, mode; ``fourCcList``
        when the client sent one).
        """
        self._check_alive()
        self._conn(_In.ACCEPT_CONNECT)
        self._send(Csid.CONTROL, T.WINDOW_ACK_SIZE, 0, m.window_ack_size(self._window_ack_size))
        self._send(Csid.CONTROL, T.SET_PEER_BANDWIDTH, 0,
                   m.set_peer_bandwidth(self._peer_bandwidth, m.PeerBandwidthLimit.DYNAMIC))
        # Announce before switching: the peer reads this message with the old size.
        self._send(Csid.CONTROL, T.SET_CHUNK_SIZE, 0, m.set_chunk_size(self._out_chunk_size))
        self._writer.chunk_size = self._out_chunk_size
        props: dict[str, Any] = {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0, "mode": 1.0}
        if "fourCcList" in self._connect_props:
            props["fourCcList"] = list(ACCEPTED_FOURCCS)
        if properties:
            props.update(properties)
        encoding = self._connect_props.get("objectEncoding", 0.0)
        if isinstance(encoding, bool) or not isinstance(encoding, (int, float)):
            encoding = 0.0
        info = m.status_object("status", "NetConnection.Connect.Success",
                               "Connection succeeded.", objectEncoding=float(encoding))
        self._send_command(0, "_result", self._connect_tid, props, info)

    def reject_connect(self, description: str) -> None:
        """Refuse the pending ``connect`` with ``_error`` NetConnection.Connect.Rejected.
        Close the connection once the output is flushed."""
        self._check_alive()
        self._conn(_In.REJECT_CONNECT)
        self._send_command(0, "_error", self._connect_tid, None, m.status_object(
            "error", "NetConnection.Connect.Rejected", description))

    def _local_stream(self, stream_id: int, inp: _SIn) -> _Stream | None:
        self._check_alive()
        self._conn(_In.SEND)
        stream = self._streams.get(stream_id)
        if stream is None:
            raise LocalProtocolError(f"{inp.value}: no stream {stream_id}")
        if self._stream(stream, inp) is None:
            return None
        return stream

    def accept_publish(self, stream_id: int) -> bool:
        """Accept the pending ``publish``: StreamBegin + onStatus NetStream.Publish.Start.

        Returns ``False`` (and sends nothing) if the client closed the stream meanwhile.
        """
        stream = self._local_stream(stream_id, _SIn.ACCEPT_PUBLISH)
        if stream is None:
            return False
        self._send(Csid.CONTROL, T.USER_CONTROL, 0, m.user_control(UC.STREAM_BEGIN, stream_id))
        self._send_status(stream_id, "status", "NetStream.Publish.Start",
                          f"{stream.name} is now published.", details=stream.name)
        return True

    def reject_publish(self, stream_id: int, code: str = "NetStream.Publish.BadName",
                       description: str = "Publishing refused.") -> bool:
        """Refuse the pending ``publish``: onStatus level error with ``code`` and
        ``description`` (FFmpeg and OBS show the description). ``False`` if withdrawn."""
        stream = self._local_stream(stream_id, _SIn.REJECT_PUBLISH)
        if stream is None:
            return False
        self._send_status(stream_id, "error", code, description, details=stream.name)
        return True

    def accept_play(self, stream_id: int) -> bool:
        """Accept the pending ``play``: StreamBegin, onStatus NetStream.Play.Reset and
        NetStream.Play.Start, ``|RtmpSampleAccess`` (what FFmpeg/rtmpdump wait for).
        ``False`` if the client closed the stream meanwhile."""
        stream = self._local_stream(stream_id, _SIn.ACCEPT_PLAY)
        if stream is None:
            return False
        name = stream.name
        self._send(Csid.CONTROL, T.USER_CONTROL, 0, m.user_control(UC.STREAM_BEGIN, stream_id))
        self._send_status(stream_id, "status", "NetStream.Play.Reset",
                          f"Playing and resetting {name}.", details=name)
        self._send_status(stream_id, "status", "NetStream.Play.Start",
                          f"Started playing {name}.", details=name)
        self._send(Csid.STREAM, T.DATA_AMF0, stream_id,
                   m.encode_data("|RtmpSampleAccess", True, True))
        return True

    def reject_play(self, stream_id: int, code: str = "NetStream.Play.StreamNotFound",
                    description: str = "Stream not found.") -> bool:
        """Refuse the pending ``play`` with onStatus level error. ``False`` if withdrawn."""
        stream = self._local_stream(stream_id, _SIn.REJECT_PLAY)
        if stream is None:
            return False
        self._send_status(stream_id, "error", code, description, details=stream.name)
        return True

    def send_status(self, stream_id: int, level: str, code: str, description: str) -> bool:
        """Send an ``onStatus`` on a stream (e.g. NetStream.Play.UnpublishNotify, or
        NetStream.Publish.BadName when another publisher takes over). ``False`` if the
        client already closed or deleted the stream."""
        stream = self._local_stream(stream_id, _SIn.SEND_STATUS)
        if stream is None:
            return False
        self._send_status(stream_id, level, code, description, details=stream.name)
        return True

    def send_metadata(self, stream_id: int, values: dict) -> bool:
        """Send ``onMetaData`` (as an ECMA array) to a playing stream. ``False`` if the
        client stopped playing."""
        if self._local_stream(stream_id, _SIn.SEND_MEDIA) is None:
            return False
        self._send(Csid.STREAM, T.DATA_AMF0, stream_id,
                   m.encode_data("onMetaData", EcmaArray(values)))
        return True

    def send_video(self, stream_id: int, timestamp: int, payload: bytes) -> bool:
        """Send one FLV video tag body to a playing stream (timestamp wraps at 32 bits).
        ``False`` if the client stopped playing."""
        if self._local_stream(stream_id, _SIn.SEND_MEDIA) is None:
            return False
        self._send(Csid.VIDEO, T.VIDEO, stream_id, payload, timestamp)
        return True

    def send_audio(self, stream_id: int, timestamp: int, payload: bytes) -> bool:
        """Send one FLV audio tag body to a playing stream. ``False`` if it stopped."""
        if self._local_stream(stream_id, _SIn.SEND_MEDIA) is None:
            return False
        self._send(Csid.AUDIO, T.AUDIO, stream_id, payload, timestamp)
        return True

    def send_ping(self, timestamp: int) -> None:
        """Queue a user control PingRequest; the answer arrives as :class:`PingResponse`."""
        self._check_alive()
        self._conn(_In.PING)
        self._send(Csid.CONTROL, T.USER_CONTROL, 0, m.user_control(UC.PING_REQUEST, timestamp))

    def data_to_send(self) -> bytes:
        """Drain and return the bytes queued for the peer."""
        out = bytes(self._out)
        self._out.clear()
        self._bytes_sent += len(out)
        return out

    # -- output helpers -------------------------------------------------------------------

    def _send(self, csid: int, type_id: int, stream_id: int, payload: bytes,
              timestamp: int = 0) -> None:
        self._out += self._writer.write(csid, type_id, stream_id, timestamp, payload)

    def _send_command(self, stream_id: int, name: str, tid: float, obj: Any, *args: Any) -> None:
        csid = Csid.COMMAND if stream_id == 0 else Csid.STREAM
        self._send(csid, T.COMMAND_AMF0, stream_id, m.encode_command(name, tid, obj, *args))

    def _send_status(self, stream_id: int, level: str, code: str, description: str,
                     **extra: Any) -> None:
        self._send_command(stream_id, "onStatus", 0, None,
                           m.status_object(level, code, description, **extra))


_C = RtmpConnection
#: Commands after connect, by name. Not listed: an ``_error`` if it has a transaction id.
_COMMAND_HANDLERS: dict[str, Callable[[RtmpConnection, int, m.Command, list[Event]], None]] = {
    "createStream": _C._cmd_create_stream,
    "publish": _C._cmd_publish,
    "play": _C._cmd_play,
    "releaseStream": _C._cmd_result_undefined,
    "FCPublish": _C._cmd_fc_publish,
    "FCUnpublish": _C._cmd_fc_unpublish,
    "closeStream": _C._cmd_close_stream,
    "deleteStream": _C._cmd_delete_stream,
    "getStreamLength": _C._cmd_get_stream_length,
    "_checkbw": _C._cmd_result_undefined,
    "checkBandwidth": _C._cmd_result_undefined,
    "FCSubscribe": _C._cmd_result_undefined,
    "FCUnsubscribe": _C._cmd_result_undefined,
    "receiveAudio": _C._cmd_result_undefined,
    "receiveVideo": _C._cmd_result_undefined,
    # Answers and notifications from the client: nothing to answer.
    "_result": _C._cmd_ignore,
    "_error": _C._cmd_ignore,
    "onStatus": _C._cmd_ignore,
    "onBWDone": _C._cmd_ignore,
    "pause": _C._cmd_ignore,
    "seek": _C._cmd_ignore,
}
del _C
