"""RTMPS and HTTPS listeners with configured certificates.

A self-signed certificate for 127.0.0.1 is made with the openssl CLI; the server gets it
for both listeners (``rtmp.tls_listen`` + ``rtmp.tls_cert``/``rtmp.tls_key``,
``http.tls_cert``/``http.tls_key``). FFmpeg pushes to ``rtmps://`` and the stream must
arrive with its frames; the API and the stream's playlist are fetched over HTTPS by an
aiohttp client that trusts only that certificate. Plain RTMP stays available beside
RTMPS, plain HTTP is refused on the HTTPS port, and a bad certificate path is a
configuration error naming the key.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys

import aiohttp
import pytest

from mediasrv.config import ConfigError, load_config
from mediasrv.tls import http_context, rtmp_context
from tests.security.support import self_signed
from tests.support.clients import ffmpeg_push
from tests.support.server import StreamRecorder, running_server

pytestmark = pytest.mark.e2e


async def test_rtmps_push_arrives_and_https_serves_it(tmp_path):
    cert, key = self_signed(tmp_path)
    async with running_server(tmp_path, "rtmp.tls_listen=127.0.0.1:0", f"rtmp.tls_cert={cert}",
                              f"rtmp.tls_key={key}", f"http.tls_cert={cert}", f"http.tls_key={key}",
                              "recording.enabled=false") as srv:
        tls_port = srv.rtmp.tls_port
        assert tls_port and tls_port != srv.rtmp_port
        recorder = StreamRecorder(srv.hub)
        push = asyncio.create_task(ffmpeg_push(f"rtmps://127.0.0.1:{tls_port}/live/secure", seconds=2))
        await recorder.wait_started("secure", timeout=30)
        status, output = await push
        assert status == 0, output
        units = await recorder.wait_ended("secure", timeout=30)
        video = [u for u in units if u.kind.value == "video"]
        assert len(video) >= 45, len(video)  # 2 s at 25 fps, every frame over TLS

        trust = ssl.create_default_context(cafile=str(cert))
        https = f"https://127.0.0.1:{srv.http_port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
            async with session.get(f"{https}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{https}/live/secure/index.m3u8") as response:
                assert response.status == 200
                assert (await response.text()).startswith("#EXTM3U")
        # A client that does not trust the certificate gets no answer at all.
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{https}/healthz")
            # Plain HTTP on the HTTPS port is not served.
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{srv.http_port}/healthz") as response:
                    assert response.status >= 400
                    raise aiohttp.ClientError("refused")

        # Plain RTMP still works beside RTMPS.
        push = asyncio.create_task(ffmpeg_push(srv.rtmp_url("plain"), seconds=1))
        await recorder.wait_started("plain", timeout=30)
        assert (await push)[0] == 0


def test_tls_settings_are_checked(tmp_path):
    cert, key = self_signed(tmp_path)
    with pytest.raises(ConfigError, match=r"^rtmp\.tls_listen \(from --set\): needs rtmp\.tls_cert and rtmp\.tls_key"):
        load_config(None, ["rtmp.tls_listen=127.0.0.1:1936"])
    with pytest.raises(ConfigError, match=r"^http\.tls_cert \(from --set\): set http\.tls_key too"):
        load_config(None, [f"http.tls_cert={cert}"])
    missing = load_config(None, ["rtmp.tls_listen=127.0.0.1:1936", f"rtmp.tls_cert={tmp_path}/nope.crt",
                                 f"rtmp.tls_key={key}"])
    with pytest.raises(ConfigError, match="rtmp.tls_cert, rtmp.tls_key: cannot read"):
        rtmp_context(missing)
    swapped = load_config(None, [f"http.tls_cert={key}", f"http.tls_key={cert}"])
    with pytest.raises(ConfigError, match="http.tls_cert, http.tls_key: not a usable"):
        http_context(swapped)
    assert http_context(load_config(None, [])) is None


async def test_serve_refuses_a_bad_certificate_with_exit_status_2(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediasrv.cli", "serve", "--set", "rtmp.listen=127.0.0.1:0",
        "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={tmp_path}",
        "--set", f"http.tls_cert={tmp_path}/missing.crt", "--set", f"http.tls_key={tmp_path}/missing.key",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err
    assert b"http.tls_cert" in err


async def test_serve_announces_https_and_rtmps(tmp_path):
    cert, key = self_signed(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediasrv.cli", "serve", "--set", "rtmp.listen=127.0.0.1:0",
        "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={tmp_path}", "--set", "transcode.enabled=false",
        "--set", "rtmp.tls_listen=127.0.0.1:0", "--set", f"rtmp.tls_cert={cert}", "--set", f"rtmp.tls_key={key}",
        "--set", f"http.tls_cert={cert}", "--set", f"http.tls_key={key}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        banner = ""
        while "API:" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, (await proc.stderr.read()).decode()
            banner += line.decode()
        import re

        rtmps = re.search(r"RTMPS:\s+rtmps://127\.0\.0\.1:(\d+)/live", banner)
        https = re.search(r"Watch:\s+https://127\.0\.0\.1:(\d+)/live", banner)
        assert rtmps and https and rtmps.group(1) != "0", banner
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
            async with session.get(f"https://127.0.0.1:{https.group(1)}/healthz") as response:
                assert response.status == 200
        # The RTMPS port speaks TLS: a TLS handshake with it succeeds.
        reader, writer = await asyncio.open_connection("127.0.0.1", int(rtmps.group(1)), ssl=trust)
        writer.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
