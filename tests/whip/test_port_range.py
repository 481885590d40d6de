"""The evidence behind ``webrtc.udp_ports`` (docs/whip.md, "Ports"): aiortc's ICE
candidates take their ports from the network namespace's ``net.ipv4.ip_local_port_range``
(aioice binds port 0), which is what a container's ``--sysctl`` sets, and the server's
start-up check reads that same value.

Run in a network namespace of its own (``unshare -n``, as root: the machine's range is
not touched) with only ``lo``, given 127.0.0.2 because aioice leaves 127.0.0.1 out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json
from mediasrv.ingest.whip.offer import check_offer
from mediasrv.ingest.whip.peer import close_peer, negotiate, peer_connection
from mediasrv.ingest.whip.port_range import port_range_warning, read_port_range
from tests.whip.offers import offer

async def main():
    peers, ports, hosts = [], [], set()
    for _ in range(4):
        pc = peer_connection(())
        peers.append(pc)
        text = offer()
        answer = await negotiate(pc, text, check_offer(text.encode()))
        for line in answer.splitlines():
            if line.startswith("a=candidate:"):
                parts = line.split()
                hosts.add(parts[4])
                ports.append(int(parts[5]))
    for pc in peers:
        await close_peer(pc)
    actual = read_port_range()
    print(json.dumps({"ports": ports, "hosts": sorted(hosts), "range": actual,
                      "same": port_range_warning((40000, 40009), actual),
                      "other": port_range_warning((50000, 50099), actual)}))

asyncio.run(main())
"""


def test_webrtc_ports_come_from_the_namespaces_ephemeral_range():
    unshare, ip = require_tool("unshare"), require_tool("ip")
    setup = ("ip link set lo up && ip addr add 127.0.0.2/8 dev lo && "
             "echo '40000 40009' > /proc/sys/net/ipv4/ip_local_port_range && exec \"$0\" -c \"$1\"")
    result = subprocess.run([unshare, "-n", "sh", "-c", setup, sys.executable, SCRIPT], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": f"{Path(ip).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip(f"no network namespace can be made here (needs root): {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    # One port per session (bundled: every m-section of an answer lists the same candidate).
    assert found["hosts"] == ["127.0.0.2"] and len(set(found["ports"])) == 4
    assert all(40000 <= port <= 40009 for port in found["ports"]), found["ports"]
    assert found["range"] == [40000, 40009]
    assert found["same"] is None and "40000-40009" in found["other"]


LOOPBACK_ONLY = """
import asyncio, json
from mediasrv.ingest.whip.offer import check_offer
from mediasrv.ingest.whip.peer import NoCandidates, close_peer, negotiate, peer_connection
from tests.whip.offers import offer
from tests.whip.support import require_webrtc_address

async def main():
    pc = peer_connection(())
    try:
        await negotiate(pc, offer(), check_offer(offer().encode()))
        outcome = "answered"
    except NoCandidates as exc:
        outcome = str(exc)
    finally:
        await close_peer(pc)
    try:
        require_webrtc_address()
        fixture = "passed"
    except BaseException as exc:  # pytest's Failed (CI=true) is a BaseException
        fixture = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"outcome": outcome, "fixture": fixture}))

asyncio.run(main())
"""


def test_with_only_127_0_0_1_there_is_no_candidate_and_the_ci_fixture_says_why():
    unshare = require_tool("unshare")
    ip = require_tool("ip")
    result = subprocess.run([unshare, "-n", "sh", "-c", "ip link set lo up && exec \"$0\" -c \"$1\"",
                             sys.executable, LOOPBACK_ONLY], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": f"{Path(ip).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CI": "true"})
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip(f"no network namespace can be made here (needs root): {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert "no network address besides 127.0.0.1" in found["outcome"]  # the server answers 503 with it
    assert found["fixture"].startswith("Failed: required in CI:") and "127.0.0.2" in found["fixture"]
