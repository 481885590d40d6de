"""The SDP answer as sent: the WebRTC stack's answer plus candidates at the public address.

Behind 1:1 NAT or in a container the machine's own addresses are private; clients can
reach the server at ``webrtc.public_address`` on the same UDP ports (the NAT or the
container runtime forwards them). Each host candidate of the answer gets a twin at that
address, with a lower priority so a client that can reach the private address (the
same network) still prefers it. ICE then works as usual: the server answers
connectivity checks on its socket whatever address the client sent them to.
"""

from __future__ import annotations

#: Subtracted from a twin's priority (host candidates differ in their low bits only).
_TWIN_PRIORITY_STEP = 1


def with_public_candidates(sdp: str, public_address: str) -> str:
    """``sdp`` with a host candidate at ``public_address`` after each IPv4 UDP host
    candidate of another address (same component and port); unchanged without one."""
    if not public_address:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line in sdp.split(newline):
        out.append(line)
        twin = _twin(line, public_address, seen)
        if twin is not None:
            out.append(twin)
    return newline.join(out)


def _twin(line: str, public_address: str, seen: set[tuple[str, str]]) -> str | None:
    if not line.startswith("a=candidate:"):
        return None
    parts = line[len("a=candidate:"):].split()
    # foundation component transport priority address port "typ" type ...
    if len(parts) < 8 or parts[6] != "typ" or parts[7] != "host" or parts[2].lower() != "udp":
        return None
    foundation, component, transport, priority, address, port = parts[:6]
    if ":" in address or address == public_address or not priority.isdigit():
        return None
    key = (component, port)
    if key in seen:
        return None
    seen.add(key)
    twin_priority = max(0, int(priority) - _TWIN_PRIORITY_STEP)
    return (f"a=candidate:{foundation}p {component} {transport} {twin_priority} {public_address} {port} "
            f"typ host")


def negotiated_codec(sdp: str, kind: str) -> str:
    """The codec an answer chose for its first ``kind`` section (the first payload type of
    its m= line: what the client will send), e.g. "VP8", "H264", "opus"; "" if none."""
    payload = None
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if payload is not None:
                break
            parts = line[2:].split()
            if parts and parts[0] == kind and len(parts) > 3:
                payload = parts[3]
        elif payload is not None and line.startswith(f"a=rtpmap:{payload} "):
            return line.split(" ", 1)[1].split("/", 1)[0]
    return ""
