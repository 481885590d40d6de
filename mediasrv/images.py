"""Still images: cover uploads made safe, thumbnails of a live stream. Blocking (PyAV):
call these with ``asyncio.to_thread``.

A cover upload is checked before any decoder sees it: its type comes from its magic bytes
(never its name or Content-Type), its container structure is walked (a truncated file is
refused: PNG chunks and their CRCs up to IEND, JPEG segments up to an end-of-image marker
after the scan, WebP RIFF chunk sizes), and the dimensions it *declares* are checked
against the pixel limit, so an image bomb is refused without allocating its frame. Then
PyAV decodes it and only its pixels are re-encoded to a fresh baseline JPEG: no metadata,
profile, comment or trailing byte of the upload survives.
"""

from __future__ import annotations

import fractions
import struct
import zlib
from dataclasses import dataclass

import av

#: A re-encoded cover fits in this box (aspect ratio kept, never enlarged).
COVER_BOX = (1920, 1080)
#: Longest side any upload may declare, whatever its pixel count.
MAX_SIDE = 16384

_DECODERS = {"jpeg": "mjpeg", "png": "png", "webp": "webp"}


class ImageError(ValueError):
    """An upload that is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class StillImage:
    jpeg: bytes
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """``jpeg``, ``png`` or ``webp`` from the magic bytes; None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def declared_size(kind: str, data: bytes) -> tuple[int, int]:
    """Walk the container; return the (width, height) it declares. ``ImageError`` when
    the structure is broken or truncated."""
    return declared_geometry(kind, data)[:2]


def declared_geometry(kind: str, data: bytes) -> tuple[int, int, int, int]:
    """Walk the container; return the (width, height, samples per pixel, bytes per
    sample) its header declares: what the decoded picture will need in memory, known
    before decoding. ``ImageError`` when the structure is broken or truncated."""
    try:
        return {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}[kind](data)
    except (IndexError, struct.error):
        raise ImageError(422, f"the {kind.upper()} image is truncated or corrupt") from None


#: Samples per pixel of each PNG colour type.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_size(data: bytes) -> tuple[int, int, int, int]:
    pos = 8
    size = None
    while True:
        if pos + 12 > len(data):
            raise ImageError(422, "the PNG image is truncated (no IEND chunk)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise ImageError(422, "the PNG image is truncated")
        if zlib.crc32(data[pos + 4:end]) != struct.unpack_from(">I", data, end)[0]:
            raise ImageError(422, f"the PNG image is corrupt (bad CRC in chunk {ctype!r})")
        if size is None:
            if ctype != b"IHDR" or length != 13:
                raise ImageError(422, "the PNG image is corrupt (no IHDR chunk first)")
            width, height, depth, colour = struct.unpack_from(">IIBB", data, pos + 8)
            # Decoded samples: grey 1, RGB 3, palette 1 (+ its palette), grey+alpha 2, RGBA 4.
            size = (width, height, _PNG_CHANNELS.get(colour, 4), 2 if depth > 8 else 1)
        if ctype == b"IEND":
            return size
        pos = end + 4


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int, int, int]:
    pos = 2
    size = None
    while True:
        if pos + 4 > len(data):
            raise ImageError(422, "the JPEG image is truncated")
        if data[pos] != 0xFF:
            raise ImageError(422, "the JPEG image is corrupt (marker expected)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if marker == 0xD9:
            raise ImageError(422, "the JPEG image has no image data")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise ImageError(422, "the JPEG image is truncated")
        if marker in _SOF:
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
            size = (width, height, max(1, components), 2 if precision > 8 else 1)
        if marker == 0xDA:  # start of scan: entropy-coded data follows up to EOI
            if size is None:
                raise ImageError(422, "the JPEG image is corrupt (no frame header before the scan)")
            # Inside scan data 0xFF is always followed by 0x00 or a marker, so the
            # first FF D9 after the scan header is the end of the image.
            if data.find(b"\xff\xd9", pos + 2 + length) < 0:
                raise ImageError(422, "the JPEG image is truncated (no end-of-image marker)")
            return size
        pos += 2 + length


def _webp_size(data: bytes) -> tuple[int, int, int, int]:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data) or riff_size < 4:
        raise ImageError(422, "the WebP image is truncated")
    end = riff_size + 8
    pos = 12
    size = None
    while pos < end:
        if pos + 8 > end:
            raise ImageError(422, "the WebP image is truncated")
        ctype, length = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if body + length > end:
            raise ImageError(422, "the WebP image is truncated")
        if size is None:
            if ctype == b"VP8X":
                flags = data[body]
                if flags & 0x02:
                    raise ImageError(415, "animated WebP images are not supported")
                width = 1 + int.from_bytes(data[body + 4:body + 7], "little")
                height = 1 + int.from_bytes(data[body + 7:body + 10], "little")
                size = (width, height, 4, 1)
            elif ctype == b"VP8 ":
                if data[body + 3:body + 6] != b"\x9d\x01\x2a":
                    raise ImageError(422, "the WebP image is corrupt (bad VP8 start code)")
                width, height = struct.unpack_from("<HH", data, body + 6)
                size = (width & 0x3FFF, height & 0x3FFF, 3, 1)
            elif ctype == b"VP8L":
                if data[body] != 0x2F:
                    raise ImageError(422, "the WebP image is corrupt (bad VP8L signature)")
                (bits,) = struct.unpack_from("<I", data, body + 1)
                size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1)
            else:
                raise ImageError(422, "the WebP image is corrupt (unknown first chunk)")
        if ctype == b"ANIM":
            raise ImageError(415, "animated WebP images are not supported")
        pos = body + length + (length & 1)
    if size is None:
        raise ImageError(422, "the WebP image has no image data")
    return size


def fit(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """Scale (width, height) down to fit ``box``, keeping the aspect ratio; never up."""
    scale = min(1.0, box[0] / width, box[1] / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def encode_jpeg(frame: av.VideoFrame, width: int, height: int, *, quality: int = 4) -> bytes:
    """Encode one frame (any format) as a baseline JPEG of ``width`` x ``height``."""
    picture = frame.reformat(width=width, height=height, format="yuvj420p", interpolation="AREA")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 1)
    encoder.thread_count = 1
    # bitexact: no encoder comment segment either; q 2-31 (lower is better).
    encoder.options = {"flags": "+bitexact", "qmin": str(quality), "qmax": str(quality + 2)}
    picture.pts = 0
    packets = encoder.encode(picture) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)


@dataclass(frozen=True, slots=True)
class CoverHeader:
    """What an upload's header declares, once ``inspect_cover`` accepted it."""

    kind: str
    width: int
    height: int


def inspect_cover(data: bytes, *, max_bytes: int, max_pixels: int,
                  max_decode_bytes: int | None = None) -> CoverHeader:
    """The checks before any decoder sees an upload (cheap: no pixel is decoded): its
    size, its type from its magic bytes, its container structure, and the picture its
    header declares against the pixel limit and ``max_decode_bytes``, the most memory
    the decoded picture may take (width x height x samples x bytes per sample: a 16-bit
    picture inside the pixel limit can still need several hundred MB). Raises
    ``ImageError``."""
    if len(data) > max_bytes:
        raise ImageError(413, f"the image is larger than {max_bytes} bytes")
    if not data:
        raise ImageError(400, "the upload is empty")
    kind = sniff(data)
    if kind is None:
        raise ImageError(415, "not a JPEG, PNG or WebP image")
    width, height, samples, sample_bytes = declared_geometry(kind, data)
    if width < 1 or height < 1:
        raise ImageError(422, f"the image declares invalid dimensions {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise ImageError(422, f"the image is too large: {width}x{height} pixels "
                              f"(at most {max_pixels} pixels and {MAX_SIDE} per side)")
    needed = width * height * samples * sample_bytes
    if max_decode_bytes is not None and needed > max_decode_bytes:
        raise ImageError(422, f"the image would take {needed // (1024 * 1024)} MiB decoded "
                              f"({width}x{height}, {samples} samples of {8 * sample_bytes} bits per pixel; "
                              f"at most {max_decode_bytes // (1024 * 1024)} MiB): send a smaller or 8-bit image")
    return CoverHeader(kind, width, height)


def decode_cover(data: bytes, header: CoverHeader, *, box: tuple[int, int] = COVER_BOX) -> StillImage:
    """Decode an upload ``inspect_cover`` accepted and re-encode its pixels (the costly
    part: run it in the bounded pool, ``mediasrv.image_pool``). Raises ``ImageError``."""
    kind, width, height = header.kind, header.width, header.height
    decoder = av.CodecContext.create(_DECODERS[kind], "r")
    decoder.thread_count = 1
    try:
        frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise ImageError(422, f"the {kind.upper()} image cannot be decoded ({type(exc).__name__})") from None
    if not frames:
        raise ImageError(422, f"the {kind.upper()} image cannot be decoded (no picture)")
    frame = frames[0]
    if (frame.width, frame.height) != (width, height):
        raise ImageError(422, "the image's decoded size differs from the size it declares")
    out_w, out_h = fit(width, height, box)
    return StillImage(encode_jpeg(frame, out_w, out_h), out_w, out_h)


def reencode_cover(data: bytes, *, max_bytes: int, max_pixels: int, box: tuple[int, int] = COVER_BOX,
                   max_decode_bytes: int | None = None) -> StillImage:
    """Check, decode and re-encode an uploaded cover (``inspect_cover`` then
    ``decode_cover``). Raises ``ImageError``."""
    header = inspect_cover(data, max_bytes=max_bytes, max_pixels=max_pixels, max_decode_bytes=max_decode_bytes)
    return decode_cover(data, header, box=box)


_VIDEO_DECODERS = {"h264": "h264", "hevc": "hevc", "av1": "libdav1d", "vp9": "vp9"}


def thumbnail_from_keyframe(codec: str, config: bytes, data: bytes, *, width: int) -> StillImage:
    """Decode one video keyframe (MP4 sample format + its configuration record) and
    encode a JPEG ``width`` pixels wide. Raises ``av.FFmpegError``/``ValueError``."""
    decoder = av.CodecContext.create(_VIDEO_DECODERS[codec], "r")
    decoder.thread_count = 1
    if config:
        decoder.extradata = config
    frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    if not frames:
        raise ValueError("the keyframe decoded to no picture")
    frame = frames[0]
    out_w, out_h = fit(frame.width, frame.height, (width, width * 4))
    return StillImage(encode_jpeg(frame, out_w, out_h), out_w, out_h)
