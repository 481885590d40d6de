"""WHIP ingest (RFC 9725, docs/whip.md): WebRTC publishers over HTTP, with aiortc.

- ``routes.py``: the HTTP endpoint (POST /whip, DELETE/PATCH/OPTIONS of a session, CORS);
- ``server.py``: the node's sessions, their limit, the publish authorization, counters;
- ``session.py``: one peer connection publishing into the hub like an RTMP publisher;
- ``peer.py``: aiortc's public API (negotiation, closing);
- ``offer.py``: the offer's check (pure); ``answer.py``: public-address candidates;
  ``links.py``: ICE servers as ``Link`` headers; ``port_range.py``: the UDP port check;
- ``transcoder.py`` (a thread per session) with ``frames.py`` (the bounded hand-over),
  ``timeline.py`` (A/V on one clock), ``video_encoder.py`` (H.264) and
  ``audio_encoder.py`` (Opus → AAC).
"""
