"""deploy/nginx-h2-ll-hls.conf, run as it is (listen address, upstream port and
certificate paths templated): nginx terminates TLS with a self-signed certificate made
with the openssl CLI, ALPN picks HTTP/2 (what Apple's players need for Low-Latency HLS),
and a blocking playlist reload, a part and a preload-hinted part come through it from a
live mediasrv stream without being held back (``proxy_buffering off``)."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from mediasrv.httpkit.keys import HLS_SERVICE
from tests.support.clients import start_ffmpeg_push
from tests.hls.conftest import parse_media_playlist, until
from tests.hls.ll_rules import check_ll_playlist, last_part_position
from tests.support.clients import run_process
from tests.support.server import StreamRecorder, running_server
from tests.support.tools import missing, require_path, require_tool

pytestmark = pytest.mark.e2e

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx-h2-ll-hls.conf"
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_config(text: str, *, port: int, upstream: int, cert: Path, key: Path) -> str:
    """The deploy file with its four site-specific lines pointed at this test."""
    replacements = [  # directives, not the comments that mention them
        (r"^(\s+)listen 443 ssl http2;$", rf"\g<1>listen 127.0.0.1:{port} ssl http2;"),
        (r"^(\s+)server 127\.0\.0\.1:8080;$", rf"\g<1>server 127.0.0.1:{upstream};"),
        (r"^(\s+)ssl_certificate +/etc/ssl/mediasrv/fullchain\.pem;$", rf"\g<1>ssl_certificate {cert};"),
        (r"^(\s+)ssl_certificate_key +/etc/ssl/mediasrv/privkey\.pem;$", rf"\g<1>ssl_certificate_key {key};"),
    ]
    for pattern, value in replacements:
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert count == 1, f"{CONF.name}: expected one line matching {pattern!r}"
    return text


def main_config(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf around the site file: foreground, one process, files in prefix."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    include {site};
}}
"""


def negotiated_alpn(port: int, cafile: Path) -> tuple[str | None, str]:
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.selected_alpn_protocol(), tls.version()


async def wait_port(port: int, proc, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            raise AssertionError(f"nginx exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nginx does not listen on {port}"
            await asyncio.sleep(0.1)


async def test_nginx_h2_proxy_example_serves_ll_hls(tmp_path):
    openssl = require_tool("openssl")
    require_path(NGINX, "nginx")
    status, output = await run_process(NGINX, "-V")
    if "--with-http_v2_module" not in output or "--with-http_ssl_module" not in output:
        missing("this nginx has no HTTP/2 or TLS module")
    curl = require_tool("curl")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    status, output = await run_process(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert), timeout=60)
    assert status == 0, output

    async with running_server(tmp_path / "srv") as srv:
        port = free_port()
        site = prefix / "site.conf"
        site.write_text(site_config(CONF.read_text(), port=port, upstream=srv.http_port, cert=cert, key=key))
        conf = prefix / "nginx.conf"
        conf.write_text(main_config(prefix, site))
        status, output = await run_process(NGINX, "-t", "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log"))
        assert status == 0, output
        nginx = await asyncio.create_subprocess_exec(
            NGINX, "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        publisher = None
        try:
            await wait_port(port, nginx)
            # ALPN: HTTP/2 offered first is chosen (TLS 1.2+).
            protocol, version = await asyncio.to_thread(negotiated_alpn, port, cert)
            assert protocol == "h2" and version in ("TLSv1.2", "TLSv1.3")

            recorder = StreamRecorder(srv.hub)
            publisher = await start_ffmpeg_push(srv.rtmp_url("proxied"), seconds=25)
            await recorder.wait_started("proxied")
            service = srv.app[HLS_SERVICE]
            seg = await until(service, "proxied", lambda s: len(s.segments) >= 1, timeout=20)
            direct = f"{srv.http_url}/live/proxied/source/"
            proxied = f"https://127.0.0.1:{port}/live/proxied/source/"
            tls = ssl.create_default_context(cafile=str(cert))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
                async with session.get(proxied + "index.m3u8") as response:
                    assert response.status == 200
                    pl = check_ll_playlist(await response.text(), live=True)
                # A blocking reload for the next part, through the proxy: answered as soon
                # as the part is complete (not buffered, not timed out by the proxy).
                for _ in range(3):
                    msn, part = (pl.next_msn, len(pl.partial_parts)) if pl.partial_parts else (pl.next_msn, 0)
                    async with session.get(f"{proxied}index.m3u8?_HLS_msn={msn}&_HLS_part={part}") as response:
                        body = await response.text()
                        answered_at = time.time()
                        assert response.status == 200
                        assert response.headers["Cache-Control"].startswith("public, max-age=")
                    pl = check_ll_playlist(body, live=True)
                    assert last_part_position(pl) >= (msn, part)
                    name = f"part_{seg.tag}_{msn}_{part}.m4s"
                    made = next(p for s in list(seg.segments) + [seg._open] if s is not None for p in s.parts
                                if p.uri == name)
                    assert answered_at - made.created_at <= seg.part_target_ms / 1000 + 0.1
                    # The part, through the proxy: the very bytes mediasrv serves.
                    async with session.get(proxied + name) as response:
                        assert response.status == 200 and "immutable" in response.headers["Cache-Control"]
                        data = await response.read()
                    async with session.get(direct + name) as response:
                        assert data == await response.read()
                # The preload hint through the proxy: held until complete, then whole.
                hint = pl.preload_hints[0]["URI"]
                async with session.get(proxied + hint) as response:
                    assert response.status == 200
                    data = await response.read()
                assert data == seg.get(hint)
                # mediasrv's answers pass unchanged: a 400 stays a 400.
                async with session.get(proxied + "index.m3u8?_HLS_part=1") as response:
                    assert response.status == 400
            assert parse_media_playlist(body).part_target is not None

            # The same over HTTP/2 itself (curl with nghttp2, as Apple's players speak it):
            # a blocking reload for the next part and that part, multiplexed on one
            # connection, both answered with HTTP/2 200 and the part's exact bytes.
            pl = check_ll_playlist(body, live=True)
            msn, part = (pl.next_msn, len(pl.partial_parts)) if pl.partial_parts else (pl.next_msn, 0)
            name = f"part_{seg.tag}_{msn}_{part}.m4s"
            status, output = await run_process(
                curl, "--http2", "--silent", "--show-error", "--cacert", str(cert), "--max-time", "15",
                "--write-out", "%{http_version} %{response_code} %{num_connects}\\n",
                "--output", str(prefix / "reload.m3u8"), f"{proxied}index.m3u8?_HLS_msn={msn}&_HLS_part={part}",
                "--output", str(prefix / "part.m4s"), proxied + name, timeout=30)
            assert status == 0, output
            answers = [line.split() for line in output.splitlines() if line.strip()]
            assert [a[:2] for a in answers] == [["2", "200"], ["2", "200"]], output
            assert sum(int(a[2]) for a in answers) == 1, f"expected one connection: {output}"
            reloaded = check_ll_playlist((prefix / "reload.m3u8").read_text(), live=True)
            assert last_part_position(reloaded) >= (msn, part)
            assert (prefix / "part.m4s").read_bytes() == seg.get(name)
        finally:
            if publisher is not None and publisher.returncode is None:
                publisher.kill()
                await publisher.wait()
            if nginx.returncode is None:
                nginx.terminate()
                try:
                    await asyncio.wait_for(nginx.wait(), 5)
                except asyncio.TimeoutError:
                    nginx.kill()
                    await nginx.wait()
        log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
        assert "[emerg]" not in log and "[crit]" not in log, log[-2000:]
