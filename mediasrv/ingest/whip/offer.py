"""The WHIP offer, checked before the WebRTC stack sees it (pure: text in, verdict out).

A client's offer is refused with a 400 and a reason a person can act on when it is not
an SDP offer we can take: not text, not SDP, no video sent to us, no video codec the
WebRTC library decodes (VP8, or H.264 in the Constrained Baseline/Baseline profiles with
packetization-mode 1: the ones aiortc negotiates), audio without Opus, more than one
video or audio track, or no ICE credentials or DTLS fingerprint.

The rules mirror what aiortc itself accepts (its codec list and H.264 profile matching),
so an offer passed here negotiates; what aiortc still refuses is a 400 too (the routes
catch it), never a 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Largest offer accepted, in bytes (a browser's is 4-8 KB; FFmpeg's under 2 KB).
MAX_OFFER_BYTES = 64 * 1024
#: Most lines and m-sections looked at (a real offer has a few hundred lines at most).
MAX_LINES = 4000
MAX_SECTIONS = 16

#: H.264 levels aiortc knows (its ``H264Level``); an unknown level does not negotiate.
_H264_LEVELS = frozenset({10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52})
_SENDING = ("sendonly", "sendrecv")


class OfferRefused(ValueError):
    """The offer cannot be taken; ``str()`` is the reason for the client."""


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """One m-section: its kind, direction and the codecs it offers (upper-case names)."""

    kind: str
    direction: str
    codecs: tuple[str, ...]
    usable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferSummary:
    """What the session needs to know of an accepted offer."""

    video: MediaOffer
    audio: MediaOffer | None = None
    sections: tuple[MediaOffer, ...] = field(default=(), repr=False)

    @property
    def video_codecs(self) -> tuple[str, ...]:
        """The usable video codecs offered, in the client's order of preference."""
        return self.video.usable


@dataclass(slots=True)
class _Section:
    kind: str
    port: str
    payloads: list[str]
    direction: str = "sendrecv"
    rtpmap: dict[str, str] = field(default_factory=dict)
    fmtp: dict[str, str] = field(default_factory=dict)
    ice: set[str] = field(default_factory=set)
    fingerprint: bool = False


def check_offer(body: bytes) -> OfferSummary:
    """The summary of an acceptable WHIP offer; ``OfferRefused`` says why it is not one."""
    if not body.strip():
        raise OfferRefused("the body is empty: send the SDP offer")
    if len(body) > MAX_OFFER_BYTES:
        raise OfferRefused(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OfferRefused("the offer is not UTF-8 text") from None
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(lines) > MAX_LINES:
        raise OfferRefused(f"the offer has more than {MAX_LINES} lines")
    if not lines or lines[0] != "v=0":
        raise OfferRefused("not an SDP offer: it must start with v=0")
    session_ice: set[str] = set()
    session_fingerprint = False
    session_direction = "sendrecv"
    sections: list[_Section] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise OfferRefused(f"not an SDP line: {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            if len(sections) >= MAX_SECTIONS:
                raise OfferRefused(f"the offer has more than {MAX_SECTIONS} media sections")
            sections.append(_media_line(value))
            continue
        if kind != "a":
            continue
        name, _, rest = value.partition(":")
        target = sections[-1] if sections else None
        if name in ("ice-ufrag", "ice-pwd") and rest.strip():
            (session_ice if target is None else target.ice).add(name)
        elif name == "fingerprint":
            if target is None:
                session_fingerprint = True
            else:
                target.fingerprint = True
        elif name in ("sendonly", "recvonly", "sendrecv", "inactive") and not rest:
            if target is None:
                session_direction = name
            else:
                target.direction = name
        elif target is not None and name in ("rtpmap", "fmtp"):
            payload, _, description = rest.partition(" ")
            if payload in target.payloads:
                table = target.rtpmap if name == "rtpmap" else target.fmtp
                table.setdefault(payload, description.strip())
    return _summary(sections, session_ice=session_ice, session_fingerprint=session_fingerprint,
                    session_direction=session_direction)


def _media_line(value: str) -> _Section:
    parts = value.split()
    if len(parts) < 4:
        raise OfferRefused(f"malformed m= line: {value[:60]!r}")
    kind, port, _proto, *payloads = parts
    return _Section(kind=kind.lower(), port=port, payloads=payloads)


def _summary(sections: list[_Section], *, session_ice: set[str], session_fingerprint: bool,
             session_direction: str) -> OfferSummary:
    media = [s for s in sections if s.kind in ("audio", "video") and s.port != "0"]
    videos = [s for s in media if s.kind == "video"]
    audios = [s for s in media if s.kind == "audio"]
    if not videos:
        raise OfferRefused("the offer has no video track: WHIP ingest needs one (H.264 or VP8)")
    if len(videos) > 1 or len(audios) > 1:
        raise OfferRefused("send one video track and at most one audio track")
    for section in media:
        if len(section.ice | session_ice) < 2:
            raise OfferRefused(f"the {section.kind} section has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
        if not (section.fingerprint or session_fingerprint):
            raise OfferRefused(f"the {section.kind} section has no DTLS fingerprint (a=fingerprint)")
    summaries = []
    for section in media:
        direction = section.direction if section.direction != "sendrecv" else session_direction
        if direction not in _SENDING:
            raise OfferRefused(f"the {section.kind} track is {direction}: a WHIP client sends (sendonly)")
        codecs = tuple(_codec_name(section.rtpmap.get(p, "")) for p in section.payloads)
        usable = tuple(dict.fromkeys(
            name for payload, name in zip(section.payloads, codecs) if _usable(section, payload, name)))
        if not usable:
            offered = ", ".join(sorted({c for c in codecs if c and c not in ("RTX", "RED", "ULPFEC")})) or "none"
            if section.kind == "video":
                raise OfferRefused("no usable video codec: send VP8, or H.264 Constrained Baseline/Baseline "
                                   f"(profile-level-id 42e01f) with packetization-mode=1; offered: {offered}")
            raise OfferRefused(f"the audio track must be Opus; offered: {offered}")
        summaries.append(MediaOffer(section.kind, direction, codecs, usable))
    video = next(s for s in summaries if s.kind == "video")
    audio = next((s for s in summaries if s.kind == "audio"), None)
    return OfferSummary(video=video, audio=audio, sections=tuple(summaries))


def _codec_name(rtpmap: str) -> str:
    return rtpmap.split("/", 1)[0].strip().upper()


def _usable(section: _Section, payload: str, name: str) -> bool:
    if section.kind == "audio":
        return name == "OPUS" and section.rtpmap.get(payload, "").upper().startswith("OPUS/48000")
    if name == "VP8":
        return section.rtpmap.get(payload, "").upper().startswith("VP8/90000")
    if name == "H264":
        return section.rtpmap.get(payload, "").upper().startswith("H264/90000") and _h264_ok(
            section.fmtp.get(payload, ""))
    return False


def _h264_ok(fmtp: str) -> bool:
    """packetization-mode=1 and a Constrained Baseline or Baseline profile-level-id (no
    profile-level-id means 42e01f, as in aiortc)."""
    params = {}
    for item in fmtp.split(";"):
        key, _, value = item.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip()
    if params.get("packetization-mode", "0") != "1":
        return False
    level_id = params.get("profile-level-id", "42e01f")
    if len(level_id) != 6:
        return False
    try:
        profile_idc, iop, level = (int(level_id[i:i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return False
    if level not in _H264_LEVELS or iop & 0x0F:
        return False
    # (profile_idc, bits that must be set): aiortc's Constrained Baseline and Baseline patterns.
    if profile_idc == 0x42:
        return True
    if profile_idc == 0x4D:
        return bool(iop & 0x80)
    if profile_idc == 0x58:
        return bool(iop & 0x80)
    return False
