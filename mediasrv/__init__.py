"""mediasrv: a self-hosted live-streaming server."""

__version__ = "0.1.0"
