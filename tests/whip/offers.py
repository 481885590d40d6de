"""SDP offers for the WHIP tests that need no real client: shaped like a browser's
(BUNDLE, rtcp-mux, sendonly, Opus + VP8/H.264 with RTX), each part switchable.

The candidate points at an address of the test network nobody answers at (checks go
unanswered, so ICE stays "checking"): a session made from it never connects.
"""

from __future__ import annotations

FINGERPRINT = ("sha-256 B8:C6:06:BF:AD:16:25:E9:A6:7A:B9:5A:02:F0:7E:00:7B:7E:7A:B3:1E:3D:C4:22:DF:72:86:98:65:"
               "7F:7A:9B")
#: Nobody listens there (TEST-NET-1, unused on the test machine's network).
SILENT_CANDIDATE = "a=candidate:1 1 udp 2130706431 192.0.2.99 40999 typ host"

AUDIO_OPUS = """m=audio 9 UDP/TLS/RTP/SAVPF 111 0
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Ab12
a=ice-pwd:0123456789abcdefghijkl
a=fingerprint:{fingerprint}
a=setup:actpass
a=mid:0
a={direction}
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:0 PCMU/8000
a=ssrc:1111 cname:test
{candidate}
"""
AUDIO_PCMU = AUDIO_OPUS.replace("111 0\n", "0\n").replace("a=rtpmap:111 opus/48000/2\na=fmtp:111 minptime=10;useinbandfec=1\n", "")

VIDEO = """m=video 9 UDP/TLS/RTP/SAVPF {payloads}
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Ab12
a=ice-pwd:0123456789abcdefghijkl
a=fingerprint:{fingerprint}
a=setup:actpass
a=mid:{mid}
a={direction}
a=rtcp-mux
a=rtcp-rsize
{codecs}a=ssrc:2222 cname:test
{candidate}
"""
CODECS = {
    "VP8": ("96 97", "a=rtpmap:96 VP8/90000\na=rtcp-fb:96 nack\na=rtcp-fb:96 nack pli\n"
                     "a=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n"),
    "H264": ("102 103", "a=rtpmap:102 H264/90000\na=rtcp-fb:102 nack pli\n"
                        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\n"
                        "a=rtpmap:103 rtx/90000\na=fmtp:103 apt=102\n"),
    "H264-high": ("104", "a=rtpmap:104 H264/90000\n"
                         "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\n"),
    "VP9": ("98", "a=rtpmap:98 VP9/90000\na=fmtp:98 profile-id=0\n"),
}


def offer(*, video: tuple[str, ...] | None = ("VP8", "H264"), audio: str | None = "opus",
          video_direction: str = "sendonly", candidate: str = SILENT_CANDIDATE, fingerprint: str = FINGERPRINT,
          newline: str = "\r\n") -> str:
    """An offer: ``video`` codecs (keys of ``CODECS``) or None for no video section,
    ``audio`` "opus", "pcmu" or None."""
    mids = []
    body = ""
    if audio is not None:
        mids.append("0")
        template = AUDIO_OPUS if audio == "opus" else AUDIO_PCMU
        body += template.format(fingerprint=fingerprint, direction="sendonly", candidate=candidate)
    if video is not None:
        mids.append("1")
        payloads = " ".join(CODECS[name][0] for name in video)
        codecs = "".join(CODECS[name][1] for name in video)
        body += VIDEO.format(payloads=payloads, codecs=codecs, fingerprint=fingerprint, mid="1",
                             direction=video_direction, candidate=candidate)
    head = ("v=0\no=- 4611731400430051336 2 IN IP4 127.0.0.1\ns=-\nt=0 0\n"
            f"a=group:BUNDLE {' '.join(mids)}\na=msid-semantic: WMS\n")
    text = head + body
    return "\n".join(line for line in text.split("\n") if line).replace("\n", newline) + newline
