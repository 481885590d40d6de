"""The open mode's takeover rule (``ingest.takeover``), case by case; the RTMP and WHIP
refusals with real clients are in tests/e2e/test_abuse_ingest.py."""

from __future__ import annotations

from mediasrv.hub import Hub
from mediasrv.ingest.takeover import PUBLISHER_HOST, REFUSAL, host_key, takeover_refusal


class Publisher:
    def kick(self, reason: str) -> None:  # the hub's PublisherHandle
        pass


def live(hub: Hub, name: str, host: str):
    publication = hub.publish(name, Publisher())
    publication.stream.attributes[PUBLISHER_HOST] = host
    return publication


def test_another_address_may_not_take_a_live_name_in_open_mode():
    hub = Hub(reconnect_grace=10)
    live(hub, "show", "10.0.0.1")
    assert takeover_refusal(hub, mode="open", name="show", key="show", host="10.0.0.2") == REFUSAL
    # The publisher's own address (an encoder reconnecting) may; another name is free.
    assert takeover_refusal(hub, mode="open", name="show", key="show", host="10.0.0.1") is None
    assert takeover_refusal(hub, mode="open", name="other", key="other", host="10.0.0.2") is None
    # A creator's key proves ownership; the authenticated modes keep the plain takeover.
    assert takeover_refusal(hub, mode="open", name="show", key="sk_abc", host="10.0.0.2") is None
    for mode in ("keys", "webhook", "accounts"):
        assert takeover_refusal(hub, mode=mode, name="show", key="secret", host="10.0.0.2") is None


async def test_an_orphaned_stream_is_kept_for_its_publishers_address_too():
    hub = Hub(reconnect_grace=10)
    publication = live(hub, "show", "10.0.0.1")
    publication.detach(clean=False)  # dropped: orphaned within the grace
    assert hub.get("show") is not None
    assert takeover_refusal(hub, mode="open", name="show", key="show", host="10.0.0.2") == REFUSAL
    assert takeover_refusal(hub, mode="open", name="show", key="show", host="10.0.0.1") is None
    hub.close()


def test_ipv4_mapped_addresses_are_their_ipv4_address():
    assert host_key("::ffff:10.0.0.1") == "10.0.0.1" == host_key("10.0.0.1")
    assert host_key("2001:db8::1") == "2001:db8::1"
    assert host_key("not an address") == "not an address"
