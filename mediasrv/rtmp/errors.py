"""Typed errors of the RTMP core.

``RemoteProtocolError``: the peer sent something we will not accept. The adapter logs it
once with the connection's context, counts it and closes that connection only.
``LocalProtocolError``: our own code asked the state machine for something out of order
(a bug on our side, never the peer's).
"""


class RtmpError(Exception):
    """Base class of the RTMP core's errors."""


class RemoteProtocolError(RtmpError):
    """The peer violated the protocol or a configured limit."""


class LocalProtocolError(RtmpError):
    """A command was issued in a state that does not allow it."""
