"""Backstage, the end hold and playback grants without a server: the hub's private and
public broadcasts, ``LiveControl.admit`` (the policy every publisher's authorization
goes through), and grants that open a private stream to whoever holds them."""

from __future__ import annotations

import pytest

from mediasrv.community.live.gate import GrantGate
from mediasrv.community.live.grants import PlaybackGrants
from mediasrv.community.live.service import ENDED_BY_CREATOR, LiveControl, NotLive
from mediasrv.config import LiveConfig
from mediasrv.hub import Hub, StreamEnded, StreamStarted, StreamWentPublic
from mediasrv.ports import PublishDecision


class Publisher:
    def __init__(self) -> None:
        self.kicked: list[str] = []

    def kick(self, reason: str) -> None:
        self.kicked.append(reason)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_backstage_name_starts_private_and_goes_public_once():
    clock = Clock()
    hub = Hub(clock=clock)
    seen = []
    hub.add_listener(lambda e: seen.append((type(e), e.stream.private, e.stream.public_at)))
    hub.set_backstage("alice", True)
    hub.publish("alice", Publisher())
    # Every listener sees the flag already set at StreamStarted.
    assert seen == [(StreamStarted, True, None)]
    assert hub.get("alice").private and hub.get_public("alice") is None and hub.public_streams() == []

    clock.now = 1010.0
    assert hub.make_public("alice") is True
    assert seen[-1] == (StreamWentPublic, False, 1010.0)
    assert hub.get_public("alice") is hub.get("alice") and hub.public_streams() == [hub.get("alice")]
    assert hub.make_public("alice") is False  # public already: nothing again
    assert hub.make_public("nobody") is False
    assert [e[0] for e in seen] == [StreamStarted, StreamWentPublic]


def test_backstage_applies_to_new_broadcasts_only():
    hub = Hub(reconnect_grace=5, loop=None)
    hub.publish("bob", Publisher())
    hub.set_backstage("bob", True)
    assert not hub.get("bob").private  # the live one keeps its state
    hub.publish("bob", Publisher())  # a takeover continues the broadcast: still public
    assert not hub.get("bob").private
    hub.stop("bob")
    hub.publish("bob", Publisher())
    assert hub.get("bob").private and hub.get("bob").public_at is None
    hub.stop("bob")
    hub.set_backstage("bob", False)
    hub.publish("bob", Publisher())
    assert not hub.get("bob").private and hub.get("bob").public_at == hub.get("bob").started_at


def test_grants_open_one_name_until_they_expire():
    clock = Clock(1_700_000_000.0)
    grants = PlaybackGrants("secret-1", ttl=60, clock=clock)
    grant = grants.issue("alice")
    assert grant.expires_at == 1_700_000_060
    assert grants.valid("alice", grant.value)
    assert not grants.valid("bob", grant.value)  # another stream
    assert not PlaybackGrants("secret-2", clock=clock).valid("alice", grant.value)  # another key
    expires, signature = grant.value.split(".")
    assert not grants.valid("alice", f"{int(expires) + 3600}.{signature}")  # a longer life forged
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert not grants.valid("alice", f"{expires}.{flipped}")
    for junk in ("", ".", "abc", f"{expires}.", f".{signature}", grant.value + "x", "9" * 13 + "." + signature,
                 grant.value.replace(".", ":"), "x" * 200):
        assert not grants.valid("alice", junk), junk
    clock.now = 1_700_000_060.0
    assert grants.valid("alice", grant.value)  # valid through its last second
    clock.now = 1_700_000_061.0
    assert not grants.valid("alice", grant.value)


def test_the_gate_lets_anyone_play_a_public_stream_and_only_grant_holders_a_private_one():
    hub = Hub()
    gate = GrantGate(PlaybackGrants("k", ttl=60))
    hub.set_backstage("alice", True)
    stream = hub.publish("alice", Publisher()).stream
    assert gate.check(stream, "").allowed is False and gate.check(stream, "").restricted
    assert gate.check(stream, "1.x").allowed is False
    assert gate.check(stream, gate.grants.issue("alice").value).allowed is False  # not bound to this broadcast
    grant = gate.issue(stream).value
    access = gate.check(stream, grant)
    assert access.allowed and access.restricted and access.query() == f"pt={grant}"
    hub.stop("alice")
    # Ended without going public: still private (its HLS is kept a while after the end).
    assert gate.check(stream, "").allowed is False
    hub.set_backstage("alice", False)
    public = hub.publish("alice", Publisher()).stream
    access = gate.check(public, "")
    assert access.allowed and not access.restricted and access.query() == ""



def test_grants_are_bound_to_one_broadcast_and_revoked_by_name_or_for_all():
    """A grant opens the broadcast it was issued for, not the next one of the same name;
    ``revoke(name)`` (a moderator removed) voids every grant of that name handed out so far
    and none of another's; ``revoke_all`` (an operator demoted) voids them all. Grants
    issued afterwards work."""
    clock = Clock(1_700_000_000.0)
    hub = Hub(clock=clock)
    gate = GrantGate(PlaybackGrants("k", ttl=600, clock=clock))
    hub.set_backstage("alice", True)
    hub.set_backstage("bob", True)
    alice = hub.publish("alice", Publisher()).stream
    bob = hub.publish("bob", Publisher()).stream
    mod, creator, bobs = gate.issue(alice).value, gate.issue(alice).value, gate.issue(bob).value
    assert gate.check(alice, mod).allowed and gate.check(bob, bobs).allowed
    assert not gate.check(bob, mod).allowed  # another stream's

    gate.revoke("alice")
    assert not gate.check(alice, mod).allowed and not gate.check(alice, creator).allowed
    assert gate.check(bob, bobs).allowed  # another creator's live is untouched
    fresh = gate.issue(alice).value
    assert gate.check(alice, fresh).allowed

    gate.revoke_all()
    assert not gate.check(alice, fresh).allowed and not gate.check(bob, bobs).allowed
    assert gate.check(bob, gate.issue(bob).value).allowed
    assert gate.revocations == 2

    # The next broadcast of the name: a grant of the last one does not open it.
    last = gate.issue(alice).value
    hub.stop("alice")
    clock.now += 5
    again = hub.publish("alice", Publisher()).stream
    assert again is not alice and again.private
    assert gate.check(alice, last).allowed  # the ended one's kept HLS, for its holders
    assert not gate.check(again, last).allowed
    assert gate.check(again, gate.issue(again).value).allowed

def _control(hub: Hub, clock: Clock, hold: float = 60.0) -> LiveControl:
    return LiveControl(LiveConfig(end_hold_seconds=hold), hub, GrantGate(PlaybackGrants("k")), accounts=None,
                       moderators=None, monotonic=clock)


def test_admit_starts_private_broadcasts_and_refuses_during_the_hold_after_an_end():
    clock = Clock()
    hub = Hub()
    live = _control(hub, clock)
    refused = PublishDecision(False, reason="unknown stream key")
    assert live.admit(refused) is refused

    assert live.admit(PublishDecision(True, "alice", private=True)).allowed
    publisher = Publisher()
    hub.publish("alice", publisher)
    assert hub.get("alice").private

    stream = live.end("alice")
    assert stream.ended and stream.end_reason == ENDED_BY_CREATOR and publisher.kicked == [ENDED_BY_CREATOR]
    assert hub.get("alice") is None
    decision = live.admit(PublishDecision(True, "alice", private=True))
    assert not decision.allowed and "ended from the studio" in decision.reason and "60 s" in decision.reason
    assert live.admit(PublishDecision(True, "bob")).allowed  # another stream is not held
    clock.now += 59.5
    assert "in 1 s" in live.admit(PublishDecision(True, "alice")).reason
    clock.now += 0.5
    assert live.hold_left("alice") == 0
    assert live.admit(PublishDecision(True, "alice", private=False)).allowed
    hub.publish("alice", Publisher())
    assert not hub.get("alice").private  # the setting was turned off meanwhile


def test_no_hold_when_it_is_zero_and_nothing_to_end_or_make_public_offline():
    clock = Clock()
    hub = Hub()
    live = _control(hub, clock, hold=0)
    with pytest.raises(NotLive):
        live.end("alice")
    with pytest.raises(NotLive):
        live.make_public("alice")
    hub.publish("alice", Publisher())
    stream, changed = live.make_public("alice")
    assert stream is hub.get("alice") and changed is False
    live.end("alice")
    assert live.admit(PublishDecision(True, "alice")).allowed


def test_ending_an_orphaned_broadcast_ends_it_without_a_publisher():
    events = []
    hub = Hub(reconnect_grace=30)
    hub.add_listener(lambda e: events.append(type(e)))
    live = _control(hub, Clock())
    publication = hub.publish("alice", Publisher())
    hub._call_later = lambda delay, callback: None  # the grace timer (never fires here)
    publication.detach(clean=False)
    assert hub.get("alice") is not None
    live.end("alice")
    assert hub.get("alice") is None and events == [StreamStarted, StreamEnded]


def test_a_private_broadcast_enters_the_cluster_directory_when_it_goes_public():
    from mediasrv.app.components import _directory_listener, _local_streams

    class Bus:
        def __init__(self) -> None:
            self.events: list[tuple] = []

        def stream_started(self, name: str, started_at: float) -> None:
            self.events.append(("started", name, started_at))

        def stream_ended(self, name: str) -> None:
            self.events.append(("ended", name))

    clock = Clock()
    hub, bus = Hub(clock=clock), Bus()
    hub.add_listener(_directory_listener(hub, bus))
    hub.set_backstage("alice", True)
    hub.publish("alice", Publisher())
    assert bus.events == [] and _local_streams(hub) == []  # no other node lists or serves it
    clock.now = 1005.0
    hub.make_public("alice")
    assert bus.events == [("started", "alice", 1005.0)] and _local_streams(hub) == [("alice", 1005.0)]
    hub.stop("alice")
    assert bus.events[-1] == ("ended", "alice")
