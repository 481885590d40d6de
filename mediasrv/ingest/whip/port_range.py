"""Is the kernel's ephemeral port range the configured ``webrtc.udp_ports``?

aiortc (through aioice) binds every ICE host candidate to port 0 and exposes no port
option, so its UDP ports are the kernel's ephemeral ports: ``net.ipv4.ip_local_port_range``
of the network namespace (a container sets its own with ``--sysctl``). The server reads
it at start and warns when it differs from the range the operator opened.
"""

from __future__ import annotations

from pathlib import Path

PROC_PATH = Path("/proc/sys/net/ipv4/ip_local_port_range")


def read_port_range(path: Path = PROC_PATH) -> tuple[int, int] | None:
    """The kernel's ephemeral range, or None where it cannot be read (not Linux)."""
    try:
        first, last = path.read_text().split()[:2]
        return int(first), int(last)
    except (OSError, ValueError):
        return None


def port_range_warning(configured: tuple[int, int] | None, actual: tuple[int, int] | None) -> str | None:
    """What to tell the operator when WebRTC will not use the configured ports; None if
    they match (or nothing was configured)."""
    if configured is None:
        return None
    wanted = f"{configured[0]}-{configured[1]}"
    if actual is None:
        return (f"webrtc.udp_ports is {wanted}, but the kernel's ephemeral port range cannot be read here: "
                "WebRTC uses whatever ports the system gives (docs/whip.md, \"Ports\")")
    if actual == configured:
        return None
    return (f"webrtc.udp_ports is {wanted}, but WebRTC binds the kernel's ephemeral ports, "
            f"net.ipv4.ip_local_port_range = {actual[0]}-{actual[1]}: open those, or set the sysctl to "
            f"\"{configured[0]} {configured[1]}\" (docker run --sysctl, compose sysctls; docs/whip.md, \"Ports\")")
