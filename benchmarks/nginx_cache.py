"""Many LL-HLS viewers through deploy/nginx-cache.conf: origin requests per part and how
long after the first viewer the others get each part (nginx's cache lock is polled).

mediasrv runs in this process (``tests/support/server.py``: defaults,
``http.trusted_proxies=127.0.0.1/32``, no transcoding) with one FFmpeg publisher (``-re``);
nginx runs the shipped file (listen, upstream and cache path templated, as in
tests/deploy/test_nginx_cache.py); the viewers (aiohttp, each from its own 127.0.0.x
address, in this process too) follow the preload hints: hinted part, then the blocking
reload that lists it. ``--lock off`` runs the same file with ``proxy_cache_lock off``.

    .venv/bin/python benchmarks/nginx_cache.py --viewers 200 --parts 6 --lock on,off
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tests.deploy.nginx_cache as nginx_cache  # noqa: E402
from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.keys import HTTP_STATS, VIEWERS
from tests.deploy.test_nginx_cache import Viewer  # noqa: E402
from tests.support.clients import start_ffmpeg_push  # noqa: E402
from tests.hls.conftest import until  # noqa: E402
from tests.support.server import StreamRecorder, running_server  # noqa: E402


async def run_once(conf: Path, viewers: int, parts: int) -> dict:
    nginx_cache.CONF = conf
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        async with running_server(tmp_path / "srv", "http.trusted_proxies=127.0.0.1/32") as srv, \
                nginx_cache.running_cache(tmp_path, srv.http_port) as cache:
            recorder = StreamRecorder(srv.hub)
            publisher = await start_ffmpeg_push(srv.rtmp_url("crowd"), seconds=90)
            try:
                await recorder.wait_started("crowd")
                await until(srv.app[HLS_SERVICE], "crowd", lambda s: len(s.segments) >= 1, timeout=20)
                stats = srv.app[HTTP_STATS]
                before = stats.requests.get("part", 0)
                crowd = [Viewer(cache.url, "crowd", f"127.0.{i // 250}.{i % 250 + 2}") for i in range(viewers)]
                deadline = time.monotonic() + 60
                await asyncio.gather(*(viewer.run(parts, deadline) for viewer in crowd))
                distinct = set().union(*(viewer.parts for viewer in crowd))
                lags = []
                for uri in distinct:
                    times = [viewer.parts[uri] for viewer in crowd if uri in viewer.parts]
                    lags.extend(t - min(times) for t in times)
                lags.sort()
                audience = srv.app[VIEWERS].audience("crowd")
                return {
                    "parts": len(distinct),
                    "requests": sum(len(viewer.parts) for viewer in crowd),
                    "origin": stats.requests.get("part", 0) - before,
                    "p50": statistics.median(lags) * 1000,
                    "p99": lags[int(0.99 * (len(lags) - 1))] * 1000,
                    "sessions": audience.concurrent,
                    "unique": audience.unique,
                }
            finally:
                if publisher.returncode is None:
                    publisher.kill()
                    await publisher.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--parts", type=int, default=6, help="hinted parts each viewer follows")
    parser.add_argument("--lock", default="on", help="on, off or on,off: proxy_cache_lock")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    shipped = ROOT / "deploy" / "nginx-cache.conf"
    print("| proxy_cache_lock | run | parts | part requests through nginx | at mediasrv | per part "
          "| lag p50 ms | lag p99 ms | sessions | unique |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for lock in args.lock.split(","):
            conf = shipped
            if lock == "off":
                conf = Path(tmp) / "nginx-cache-lock-off.conf"
                text = shipped.read_text()
                assert text.count("proxy_cache_lock on;") == 1
                conf.write_text(text.replace("proxy_cache_lock on;", "proxy_cache_lock off;"))
            for run in range(1, args.runs + 1):
                r = asyncio.run(run_once(conf, args.viewers, args.parts))
                print(f"| {lock} | {run} | {r['parts']} | {r['requests']:,} | {r['origin']:,} | "
                      f"{r['origin'] / r['parts']:.2f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['sessions']} | {r['unique']} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
