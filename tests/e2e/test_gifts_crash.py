"""kill -9 during a burst of gifts: after a restart on the same data_dir every
acknowledged gift is in the ledger, none twice, and the books balance."""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp
import pytest

from mediasrv.store import SqliteStore
from tests.accounts.support import ADMIN_PASSWORD, PASSWORD
from tests.gifts.support import assert_balanced

pytestmark = pytest.mark.e2e

CREDITED = 10_000
PRICE = 10  # a rose


async def _start(data_dir) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediasrv.cli", "serve",
        "--set", "rtmp.listen=127.0.0.1:0", "--set", "http.listen=127.0.0.1:0", "--set", f"data_dir={data_dir}",
        "--set", "auth.mode=accounts", "--set", f"accounts.admin_password={ADMIN_PASSWORD}",
        "--set", "recording.enabled=false", "--set", "transcode.enabled=false",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    lines = []
    while not any("API:" in line for line in lines):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "the server exited before printing its banner"
        lines.append(line.decode())
    port = re.search(r"Watch:\s+http://127\.0\.0\.1:(\d+)/", "".join(lines))
    assert port, "".join(lines)
    return proc, f"http://127.0.0.1:{port.group(1)}"


async def _login(http: aiohttp.ClientSession, handle: str, password: str = PASSWORD) -> dict:
    async with http.post("/api/login", json={"handle": handle, "password": password}) as response:
        assert response.status == 200, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def test_kill_9_during_a_burst_of_gifts_loses_no_acknowledged_gift(tmp_path):
    proc, url = await _start(tmp_path)
    acknowledged: list[str] = []
    attempted: list[str] = []
    try:
        async with aiohttp.ClientSession(url) as http:
            admin = await _login(http, "admin", ADMIN_PASSWORD)
            for handle, role in (("alice", "creator"), ("bob", "viewer")):
                async with http.post("/api/users", json={"handle": handle, "password": PASSWORD, "role": role}) as r:
                    assert r.status == 201, await r.text()
            bob = await _login(http, "bob")
            async with http.post("/api/users/bob/wallet/credits", headers=admin,
                                 json={"coins": CREDITED, "idempotency_key": "pay-1"}) as response:
                assert response.status == 201, await response.text()

            killed = asyncio.Event()

            async def sender(worker: int) -> None:
                for index in range(10_000):
                    request_id = f"w{worker}-{index}"
                    attempted.append(request_id)
                    try:
                        async with http.post("/api/streams/alice/gifts", headers=bob,
                                             json={"gift_id": "rose", "request_id": request_id}) as response:
                            assert response.status == 201, await response.text()
                            await response.read()
                    except aiohttp.ClientError:
                        assert killed.is_set(), "a request failed before the kill"
                        return
                    acknowledged.append(request_id)

            workers = [asyncio.create_task(sender(w)) for w in range(8)]
            deadline = asyncio.get_running_loop().time() + 30
            while len(acknowledged) < 60:  # a burst under way: kill in the middle of it
                assert asyncio.get_running_loop().time() < deadline, "the burst did not get going"
                await asyncio.sleep(0.01)
            killed.set()
            proc.kill()  # SIGKILL: no shutdown, no flush
            await proc.wait()
            await asyncio.wait_for(asyncio.gather(*workers), 30)
        assert proc.returncode == -9

        proc, url = await _start(tmp_path)
        store = SqliteStore(tmp_path / "mediasrv.db")  # a reader beside the restarted server (WAL)
        try:
            user = store.get_user_by_handle("bob")
            in_ledger = {rid for rid in attempted if store.find_gift(user.id, rid) is not None}
            assert set(acknowledged) <= in_ledger, sorted(set(acknowledged) - in_ledger)
            summary = store.ledger_summary()
            assert_balanced(summary)
            assert summary.gifts == len(in_ledger) and summary.gifts_coins == PRICE * len(in_ledger)
            assert store.wallet_balance(user.id) == CREDITED - PRICE * len(in_ledger)

            # Every attempted request retried after the restart: those in the ledger are
            # replays (charged once), the rest go through now; none is charged twice.
            async with aiohttp.ClientSession(url) as http:
                bob = await _login(http, "bob")
                for request_id in attempted:
                    async with http.post("/api/streams/alice/gifts", headers=bob,
                                         json={"gift_id": "rose", "request_id": request_id}) as response:
                        body = await response.json()
                        assert response.status == (200 if request_id in in_ledger else 201), body
                        assert body["replayed"] is (request_id in in_ledger)
            summary = store.ledger_summary()
            assert_balanced(summary)
            assert summary.gifts == len(set(attempted))
            assert store.wallet_balance(user.id) == CREDITED - PRICE * len(set(attempted))
        finally:
            store.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
