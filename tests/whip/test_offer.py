"""The WHIP offer check (pure) and aiortc's negotiation of what it lets through: every
offer is answered or refused with a reason (a 400), never an unexpected exception (a 5xx).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediasrv.ingest.whip.offer import OfferRefused, check_offer
from mediasrv.ingest.whip.peer import close_peer, negotiate, peer_connection
from tests.whip.offers import offer


def test_a_browser_like_offer_is_taken_with_the_clients_codec_order():
    summary = check_offer(offer().encode())
    assert summary.video_codecs == ("VP8", "H264")
    assert summary.audio is not None and summary.audio.usable == ("OPUS",)
    assert check_offer(offer(video=("H264", "VP8")).encode()).video_codecs == ("H264", "VP8")
    assert check_offer(offer(audio=None, newline="\n").encode()).audio is None


@pytest.mark.parametrize("body, reason", [
    (b"", "empty"),
    (b"   \r\n", "empty"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
    (b"hello world", "v=0"),
    (b"v=0\r\nthis is not sdp\r\n", "not an SDP line"),
    (b"v=0\r\nm=video\r\n", "malformed m= line"),
    (offer(video=None).encode(), "no video track"),
    (offer(video=("H264-high",)).encode(), "no usable video codec"),
    (offer(video=("VP9",)).encode(), "offered: VP9"),
    (offer(audio="pcmu").encode(), "must be Opus"),
    (offer(video_direction="recvonly").encode(), "recvonly"),
    (offer().replace("a=ice-ufrag:Ab12\r\n", "").encode(), "ICE credentials"),
    (offer().replace("a=fingerprint:", "a=x-fingerprint:").encode(), "DTLS fingerprint"),
    (offer() .replace("m=audio", "m=video").encode(), "one video track"),
    (b"v=0\r\n" + b"a=x\r\n" * 5000, "lines"),
    (b"v=0\r\n" + b"x" * 70_000, "larger"),
])
def test_refusals_say_why(body, reason):
    with pytest.raises(OfferRefused) as refused:
        check_offer(body)
    assert reason in str(refused.value)


def test_h264_profiles_follow_what_aiortc_negotiates():
    def h264(level_id: str, mode: str = "1") -> bytes:
        return offer(video=("H264",)).replace("profile-level-id=42e01f", f"profile-level-id={level_id}").replace(
            "packetization-mode=1", f"packetization-mode={mode}").encode()

    for ok in ("42e01f", "42001f", "42c01e", "4d801f", "58c01f", "42e034"):
        check_offer(h264(ok))
    for refused in ("640c1f", "4d001f", "42e0ff", "42e", "zzzzzz", "f4001f"):
        with pytest.raises(OfferRefused):
            check_offer(h264(refused))
    with pytest.raises(OfferRefused):
        check_offer(h264("42e01f", mode="0"))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode))
def test_any_bytes_are_refused_or_taken(body):
    try:
        check_offer(body)
    except OfferRefused:
        pass


_LINES = offer().split("\r\n")


@st.composite
def mutated_offers(draw) -> str:
    """The browser-like offer with lines dropped, duplicated, swapped or edited."""
    lines = list(_LINES)
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "swap", "edit", "junk"]))
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "edit" and lines[index]:
            at = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:at] + draw(st.text(max_size=12)) + lines[index][at + 1:]
        else:
            lines.insert(index, draw(st.sampled_from([
                "a=rtpmap:96 VP8/abc", "a=fmtp:96", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "a=group:BUNDLE 7", "a=setup:holdconn", "a=candidate:x", "a=mid:", "a=ssrc:x",
                "m=video 0 UDP/TLS/RTP/SAVPF 96", "a=fingerprint:md5 00", "a=rtcp-fb:96", "c=IN IP6 ::"])))
        if not lines:
            lines = ["v=0"]
    return "\r\n".join(lines)


async def _negotiate(text: str) -> None:
    pc = peer_connection(())
    try:
        summary = check_offer(text.encode())
        await negotiate(pc, text, summary)
    except OfferRefused:
        pass
    finally:
        await close_peer(pc)  # as the server does after a refusal


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_offers())
def test_mutated_offers_are_answered_or_refused_never_crash(text):
    # aiortc negotiates for real (sockets bound, candidates gathered): what it refuses must
    # come back as OfferRefused (a 400), anything else would be a 5xx.
    asyncio.run(_negotiate(text))
