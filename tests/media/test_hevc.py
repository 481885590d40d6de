import pytest

from mediasrv.media import hevc
from mediasrv.media.errors import MalformedMediaError

from . import samples
from tests.support.tools import in_ci

pytestmark = pytest.mark.skipif(not samples.has_encoder("hevc") and not in_ci(), reason="no HEVC encoder in PyAV")

PROFILE_NAMES = {1: "Main", 2: "Main 10", 3: "Main Still Picture", 4: "Rext"}


def _expected_codec_string(record: bytes) -> str:
    """ISO/IEC 14496-15 Annex E.3, computed straight from the hvcC bytes."""
    space = ["", "A", "B", "C"][record[1] >> 6]
    tier = "H" if record[1] & 0x20 else "L"
    compat = int.from_bytes(record[2:6], "big")
    reversed_compat = sum(1 << (31 - i) for i in range(32) if compat & (1 << i))
    constraints = list(record[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = ["hvc1", f"{space}{record[1] & 0x1F}", f"{reversed_compat:X}", f"{tier}{record[12]}"]
    return ".".join(parts + [f"{b:X}" for b in constraints])


@pytest.mark.parametrize(
    ("pix_fmt", "size", "string"),
    [
        ("yuv420p", (320, 240), "hvc1.1.6.L60.90"),
        ("yuv420p", (318, 238), "hvc1.1.6.L60.90"),  # conformance window
        ("yuv420p10le", (318, 238), "hvc1.2.4.L60.90"),
        ("yuv444p", (318, 238), "hvc1.4.10.L60.9E.8"),
        ("yuv422p10le", (318, 238), "hvc1.4.10.L60.9D.8"),
    ],
)
def test_hvcc_from_libx265_matches_libav(pix_fmt, size, string):
    s = samples.video("hevc", *size, frames=3, audio_frames=0, pix_fmt=pix_fmt)
    probe = s.probe["video"]
    cfg = hevc.parse_hvcc(s.video_config)
    assert PROFILE_NAMES[cfg.ptl.profile_idc] == probe.profile
    assert cfg.ptl.level_idc == probe.level
    assert cfg.nal_length_size == 4
    assert [a.nal_type for a in cfg.arrays][:3] == [hevc.HevcNalType.VPS, hevc.HevcNalType.SPS, hevc.HevcNalType.PPS]
    sps = cfg.parsed_sps()
    assert (sps.width, sps.height) == (probe.width, probe.height) == size
    assert sps.ptl == cfg.ptl
    assert sps.bit_depth_luma == cfg.bit_depth_luma == (10 if "10" in pix_fmt else 8)
    assert sps.chroma_format_idc == cfg.chroma_format_idc
    assert cfg.codec_string == _expected_codec_string(s.video_config) == string


def test_build_hvcc_is_byte_identical_to_libavformat():
    s = samples.video("hevc")
    nals = list(hevc.iter_annexb(s.extradata))
    by_type = lambda t: [n for n in nals if hevc.nal_type(n) == t]  # noqa: E731
    built = hevc.build_hvcc(
        by_type(hevc.HevcNalType.VPS), by_type(hevc.HevcNalType.SPS), by_type(hevc.HevcNalType.PPS),
        by_type(hevc.HevcNalType.PREFIX_SEI), array_completeness=False,
    )
    assert built == s.video_config
    complete = hevc.parse_hvcc(hevc.build_hvcc(by_type(32), by_type(33), by_type(34)))
    assert all(a.complete for a in complete.arrays)
    assert complete.vps == tuple(by_type(32)) and complete.pps == tuple(by_type(34))


def test_codec_string_profile_space_and_tier():
    ptl = hevc.HevcProfileTierLevel(profile_space=1, tier_flag=1, profile_idc=2,
                                    compatibility_flags=0x20000000, constraint_flags=0xB0 << 40, level_idc=120)
    assert hevc.hevc_codec_string(ptl) == "hvc1.A2.4.H120.B0"
    zero = hevc.HevcProfileTierLevel(0, 0, 1, 0x60000000, 0, 93)
    assert hevc.hevc_codec_string(zero, "hev1") == "hev1.1.6.L93"


def test_frames_are_length_prefixed_with_an_irap_first():
    s = samples.video("hevc")
    frames = [t for t in s.video_tags if t.body[0] & 0x0F in (1, 3)]
    first = [n for n in hevc.iter_length_prefixed(_frame_data(frames[0].body), 4)]
    assert any(hevc.is_irap(n) for n in first)
    later = [n for f in frames[1:] for n in hevc.iter_length_prefixed(_frame_data(f.body), 4)]
    assert not any(hevc.is_irap(n) for n in later)


def _frame_data(body: bytes) -> bytes:
    # E-RTMP: header byte + FourCC (+ SI24 for CodedFrames)
    return body[8:] if body[0] & 0x0F == 1 else body[5:]


def test_hvcc_errors():
    good = samples.video("hevc").video_config
    with pytest.raises(MalformedMediaError, match="configurationVersion"):
        hevc.parse_hvcc(b"\x00" + good[1:])
    with pytest.raises(MalformedMediaError, match="lengthSizeMinusOne"):
        hevc.parse_hvcc(good[:21] + bytes([good[21] & 0xFC | 2]) + good[22:])
    for n in range(len(good) - 1):
        with pytest.raises(MalformedMediaError):
            hevc.parse_hvcc(good[:n])


def test_sps_errors():
    with pytest.raises(MalformedMediaError):
        hevc.parse_sps(b"\x44\x01\xc0")  # a PPS
    with pytest.raises(MalformedMediaError):
        hevc.parse_sps(b"\x42")
    sps = hevc.parse_hvcc(samples.video("hevc").video_config).sps[0]
    for n in range(2, 20):
        with pytest.raises(MalformedMediaError):
            hevc.parse_sps(sps[:n])
