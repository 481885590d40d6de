"""`mediasrv serve` as a real process: banner, health, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

pytestmark = pytest.mark.e2e


async def test_serve_prints_banner_answers_and_stops_on_sigterm(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediasrv.cli", "serve",
        "--set", "rtmp.listen=127.0.0.1:0", "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={tmp_path}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        lines = []
        while not any("API:" in line for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "server exited before printing its banner: " + (await proc.stderr.read()).decode()
            lines.append(line.decode())
        banner = "".join(lines)
        rtmp = re.search(r"Server:\s+rtmp://127\.0\.0\.1:(\d+)/live", banner)
        http = re.search(r"Watch:\s+http://127\.0\.0\.1:(\d+)/live/<name>/index\.m3u8", banner)
        assert rtmp and http, banner
        assert "Stream Key" in banner
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{http.group(1)}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
        reader, writer = await asyncio.open_connection("127.0.0.1", int(rtmp.group(1)))
        writer.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
