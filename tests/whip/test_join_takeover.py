"""The open mode's takeover rule, asked again when a WHIP session joins the hub (its first
decoded frame): a publisher that started from another address between the offer and that
frame keeps its stream. The session's attach is called as the receive task would, so the
order of events is exact (no network, no waiting); the offer-time refusal with real
clients is in tests/e2e/test_abuse_ingest.py."""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace

from mediasrv.config import WebrtcConfig
from mediasrv.hub import Hub
from mediasrv.ingest.takeover import PUBLISHER_HOST, REFUSAL
from mediasrv.ingest.whip.server import WhipServer
from mediasrv.ingest.whip.session import WhipSession


class Publisher:
    def __init__(self) -> None:
        self.kicked: list[str] = []

    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        self.kicked.append(reason)


class Peer:
    """What a session does with its peer connection once closed."""

    connectionState = "connected"

    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    def on(self, *_args) -> None:
        pass

    def getTransceivers(self) -> list:
        return []


def server(hub: Hub, mode: str = "open") -> WhipServer:
    authorizer = SimpleNamespace(config=SimpleNamespace(mode=mode))
    return WhipServer(WebrtcConfig(), hub, authorizer, app="live", keyframe_interval=1.0)


def offered(whip: WhipServer, *, name: str, client: str, key: str | None = None) -> WhipSession:
    """A session as ``open_session`` leaves it once its offer is answered."""
    key = key or name
    session = WhipSession(whip, f"s-{client}", name=name, client=client, key_digest=hashlib.sha256(key.encode()).digest(),
                          pc=Peer(), has_audio=False, created_at=0.0, proves_owner=key.startswith("sk_"))
    whip.sessions[session.id] = session
    return session


async def test_a_name_taken_from_another_address_after_the_offer_is_not_taken_over(caplog):
    hub = Hub(reconnect_grace=10)
    whip = server(hub)
    # The offer from 10.0.0.2 passes: nobody publishes "show" yet.
    session = offered(whip, name="show", client="10.0.0.2")
    # Meanwhile (ICE, DTLS) an RTMP encoder at 10.0.0.1 starts publishing "show".
    first = Publisher()
    publication = hub.publish("show", first)
    publication.stream.attributes[PUBLISHER_HOST] = "10.0.0.1"
    caplog.set_level(logging.WARNING, "mediasrv")
    # The session's first frame: it asks again and is closed, never attached.
    assert session._attach() is False
    assert session.closed and session.end_reason == REFUSAL and not session.live
    assert hub.get("show").publisher is first and first.kicked == []
    assert whip.stats.refused.get("takeover") == 1 and whip.stats.publishes == 0
    assert session.id not in whip.sessions
    assert any("refused as it joined" in r.getMessage() for r in caplog.records)
    await session.wait_closed()
    assert session.pc.closed
    hub.close()


async def test_the_same_address_or_a_creators_key_still_takes_over_at_join():
    hub = Hub(reconnect_grace=10)
    whip = server(hub)
    for client, key in (("10.0.0.1", None), ("10.0.0.9", "sk_creatorkey")):
        session = offered(whip, name="show", client=client, key=key)
        current = Publisher()
        hub.publish("show", current).stream.attributes[PUBLISHER_HOST] = "10.0.0.1"
        assert session._attach() is True
        assert session.live and current.kicked  # took the stream over
        session.close("test over")
        await session.wait_closed()
    hub.close()


async def test_other_modes_keep_the_plain_takeover_at_join():
    hub = Hub(reconnect_grace=10)
    whip = server(hub, mode="keys")
    session = offered(whip, name="show", client="10.0.0.2")
    current = Publisher()
    hub.publish("show", current).stream.attributes[PUBLISHER_HOST] = "10.0.0.1"
    assert session._attach() is True and current.kicked
    session.close("test over")
    await session.wait_closed()
    hub.close()
