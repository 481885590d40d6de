"""Run the shipped deploy/nginx-cache.conf with real nginx on 127.0.0.1.

Only the three site-specific lines the file's header names are changed (listen address,
upstream address, cache directory); everything else is the file as shipped."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from tests.support.clients import run_process
from tests.support.tools import require_path

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx-cache.conf"
SIGN_JS = CONF.parent / "nginx-hls-sign.js"
NGINX = "/usr/sbin/nginx"
#: The njs module (Debian's libnginx-mod-http-js): the signature check of non-public lives.
NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"
#: The URL signing secret the tests give nginx (and mediasrv: ``hls.url_signing_secret``).
TEST_URL_SECRET = "test-url-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_config(text: str, *, port: int, upstream: int, cache_dir: Path, url_secret: str = TEST_URL_SECRET) -> str:
    """The deploy file with its listen, upstream, cache-path, njs script and URL secret
    lines pointed at this test."""
    replacements = [  # directives, not the comments that mention them
        (r"^(\s+)listen 80;$", rf"\g<1>listen 127.0.0.1:{port};"),
        (r"^(\s+)server 127\.0\.0\.1:8080;$", rf"\g<1>server 127.0.0.1:{upstream};"),
        (r"^proxy_cache_path /var/cache/nginx/mediasrv ", f"proxy_cache_path {cache_dir} "),
        (r"^js_import mediasrv_hls from /etc/nginx/mediasrv/nginx-hls-sign\.js;$",
         f"js_import mediasrv_hls from {SIGN_JS};"),
        (r'^(\s+)set \$mediasrv_url_secret "CHANGE-ME";$', rf'\g<1>set $mediasrv_url_secret "{url_secret}";'),
    ]
    for pattern, value in replacements:
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert count == 1, f"{CONF.name}: expected one line matching {pattern!r}"
    return text


def main_config(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf around the site file: foreground, one process, files in prefix,
    enough connections for a few hundred viewers (each may hold one to mediasrv too)."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""load_module {NJS_MODULE};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp}
    include {site};
}}
"""


@dataclass
class RunningCache:
    port: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


async def _wait_port(port: int, proc, timeout: float = 10.0) -> None:
    """Poll until nginx accepts connections (it signals readiness no other way)."""
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
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_cache(tmp_path: Path, upstream_port: int) -> AsyncIterator[RunningCache]:
    """Start nginx with deploy/nginx-cache.conf in front of ``upstream_port``; stop it after.
    Fails if nginx logged an emergency or critical error meanwhile."""
    require_path(NGINX, "nginx")
    require_path(NJS_MODULE, "nginx's njs module (libnginx-mod-http-js)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    site = prefix / "site.conf"
    site.write_text(site_config(CONF.read_text(), port=port, upstream=upstream_port, cache_dir=prefix / "cache"))
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    status, output = await run_process(NGINX, "-t", "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log"))
    assert status == 0, output
    nginx = await asyncio.create_subprocess_exec(
        NGINX, "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    cache = RunningCache(port, prefix)
    try:
        await _wait_port(port, nginx)
        yield cache
    finally:
        if nginx.returncode is None:
            nginx.terminate()
            try:
                await asyncio.wait_for(nginx.wait(), 5)
            except asyncio.TimeoutError:
                nginx.kill()
                await nginx.wait()
    log = cache.error_log()
    assert "[emerg]" not in log and "[crit]" not in log and "[alert]" not in log, log[-2000:]
