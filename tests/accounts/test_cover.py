"""Cover uploads: valid images are re-encoded to clean JPEGs; everything else is a clear
4xx and leaves nothing stored."""

from __future__ import annotations

import fractions
import io
import struct
import zlib

import aiohttp
import av
import numpy as np
import pytest

from tests.accounts.support import accounts_server

SECRET = b"GPS-48.8584N-2.2945E-SECRET"


def _frame(width: int = 320, height: int = 180) -> av.VideoFrame:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = (np.arange(width) % 256)[None, :]
    image[:, :, 1] = 200
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def encode_image(codec: str, pix_fmt: str, width: int = 320, height: int = 180) -> bytes:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = fractions.Fraction(1, 1)
    frame = _frame(width, height).reformat(format=pix_fmt)
    frame.pts = 0
    return b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))


def jpeg_with_metadata() -> bytes:
    data = encode_image("mjpeg", "yuvj420p")
    exif = b"Exif\x00\x00" + SECRET
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    com = b"\xff\xfe" + struct.pack(">H", len(SECRET) + 2) + SECRET
    return data[:2] + app1 + com + data[2:] + b"trailing " + SECRET


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_metadata() -> bytes:
    data = encode_image("png", "rgb24")
    text = _chunk(b"tEXt", b"Comment\x00" + SECRET)
    return data[:33] + text + data[33:]  # after the signature and IHDR


def png_bomb(width: int = 16000, height: int = 16000) -> bytes:  # 256 Mpx, within the side limit
    row = b"\x00" + b"\x00" * 3 * 64
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(row * 64, 9)) + _chunk(b"IEND", b""))


def jpeg_bomb() -> bytes:
    data = bytearray(encode_image("mjpeg", "yuvj420p"))
    pos = data.index(b"\xff\xc0")
    data[pos + 5:pos + 9] = struct.pack(">HH", 65000, 65000)  # height, width in the frame header
    return bytes(data)


def webp_bomb() -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + b"VP8 " + struct.pack("<I", 0)
    return b"RIFF" + struct.pack("<I", len(body)) + body


VALID = {
    "jpeg": lambda: encode_image("mjpeg", "yuvj420p"),
    "png": lambda: encode_image("png", "rgb24"),
    "webp": lambda: encode_image("libwebp", "yuv420p"),
    "jpeg-with-exif": jpeg_with_metadata,
    "png-with-text": png_with_metadata,
    "png-rgba": lambda: encode_image("png", "rgba"),
}


def _decode_jpeg(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data), format="jpeg_pipe") as container:
        return next(container.decode(video=0))


@pytest.mark.parametrize("kind", sorted(VALID))
async def test_valid_images_become_clean_jpegs(tmp_path, kind):
    upload = VALID[kind]()
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        response = await api.http.put("/api/me/cover", data=upload, headers={**alice, "Content-Type": "image/png"})
        body = await response.json()
        assert response.status == 200, body
        assert (body["width"], body["height"]) == (320, 180)
        image = await api.http.get(body["cover_url"])
        assert image.status == 200 and image.content_type == "image/jpeg"
        stored = await image.read()
        assert stored[:3] == b"\xff\xd8\xff" and stored != upload
        assert SECRET not in stored and b"Exif" not in stored and b"Lavc" not in stored
        frame = _decode_jpeg(stored)
        assert (frame.width, frame.height) == (320, 180)
        settings = await (await api.http.get("/api/me/settings", headers=alice)).json()
        assert settings["cover_url"] == body["cover_url"]
        profile = await (await api.http.get("/api/users/alice")).json()
        assert profile["cover_url"] == body["cover_url"]


async def test_large_images_are_scaled_into_the_box_and_replacing_removes_the_old_file(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        big = encode_image("mjpeg", "yuvj420p", 3840, 2160)
        body = await (await api.http.put("/api/me/cover", data=big, headers=alice)).json()
        assert (body["width"], body["height"]) == (1920, 1080)
        await api.http.put("/api/me/cover", data=encode_image("png", "rgb24"), headers=alice)
        assert len(list((tmp_path / "covers").iterdir())) == 1
        assert (await api.http.delete("/api/me/cover", headers=alice)).status == 204
        assert list((tmp_path / "covers").iterdir()) == []
        await api.error(await api.http.get("/api/users/alice/cover"), 404)


async def test_multipart_upload(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        form = aiohttp.FormData()
        form.add_field("cover", encode_image("png", "rgb24"), filename="me.png", content_type="image/png")
        response = await api.http.put("/api/me/cover", data=form, headers=alice)
        assert response.status == 200, await response.text()


async def test_a_multipart_form_has_the_cover_part_only(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        for fields in ([("file", "me.png")], [("cover", "me.png"), ("extra", "x.png")]):
            form = aiohttp.FormData()
            for name, filename in fields:
                form.add_field(name, encode_image("png", "rgb24"), filename=filename, content_type="image/png")
            response = await api.http.put("/api/me/cover", data=form, headers=alice)
            assert response.status == 400, (fields, await response.text())
            assert "cover" in (await response.json())["error"]
        await api.error(await api.http.get("/api/users/alice/cover"), 404)  # nothing was stored


def _truncated(kind: str) -> bytes:
    data = VALID[kind]()
    return data[: len(data) * 2 // 3]


BAD = [
    ("truncated jpeg", lambda: _truncated("jpeg"), 422, "truncated"),
    ("truncated png", lambda: _truncated("png"), 422, "truncated"),
    ("truncated webp", lambda: _truncated("webp"), 422, "truncated"),
    ("text named .png", lambda: b"#!/bin/sh\necho this is not an image\n" * 20, 415, "not a JPEG, PNG or WebP"),
    ("gif", lambda: b"GIF89a" + b"\x00" * 100, 415, "not a JPEG, PNG or WebP"),
    ("png bomb", png_bomb, 422, "too large"),
    ("jpeg bomb", jpeg_bomb, 422, "too large"),
    ("webp bomb", webp_bomb, 422, "too large"),
    ("empty", lambda: b"", 400, "empty"),
]


@pytest.mark.parametrize("name, make, status, fragment", BAD, ids=[b[0] for b in BAD])
async def test_bad_uploads_are_refused_and_nothing_is_stored(tmp_path, name, make, status, fragment):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        form = aiohttp.FormData()
        form.add_field("cover", make(), filename="cover.png", content_type="image/png")
        message = await api.error(await api.http.put("/api/me/cover", data=form, headers=alice), status)
        assert fragment in message
        raw = await api.http.put("/api/me/cover", data=make(), headers={**alice, "Content-Type": "image/png"})
        assert await api.error(raw, status) == message
        _assert_nothing_stored(tmp_path)
        assert (await (await api.http.get("/api/me/settings", headers=alice)).json())["cover_url"] is None


async def test_a_50_mb_upload_is_refused(tmp_path):
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        huge = b"\xff\xd8\xff\xe0" + bytes(50 * 1024 * 1024)
        message = await api.error(await api.http.put("/api/me/cover", data=huge, headers=alice), 413)
        assert "larger than 5242880 bytes" in message

        async def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(50):
                yield bytes(1024 * 1024)

        message = await api.error(await api.http.put("/api/me/cover", data=chunks(), headers=alice), 413)
        assert "larger than" in message
        _assert_nothing_stored(tmp_path)


def _assert_nothing_stored(tmp_path):
    covers = tmp_path / "covers"
    assert not covers.exists() or list(covers.iterdir()) == []


async def test_an_upload_above_the_apps_1_mib_body_limit_is_accepted(tmp_path):
    noise = np.random.default_rng(1).integers(0, 255, (1000, 1200, 3), dtype=np.uint8)
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 1200, 1000, "rgb24"
    ctx.time_base = fractions.Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(noise, format="rgb24")
    frame.pts = 0
    upload = b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))
    assert 2 * 1024 * 1024 < len(upload) < 5 * 1024 * 1024
    async with accounts_server(tmp_path) as api:
        alice = await api.user("alice", "creator")
        response = await api.http.put("/api/me/cover", data=upload, headers=alice)
        assert response.status == 200, await response.text()
        assert (await response.json())["width"] == 1200
