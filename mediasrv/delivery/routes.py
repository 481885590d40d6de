"""HTTP routes of HLS: playlists, init segments and media segments, all from memory.

- ``GET /live/{name}/index.m3u8``: master playlist;
- ``GET /live/{name}/{rendition}/index.m3u8``: media playlist;
- ``GET /live/{name}/{rendition}/{file}``: ``init_*.mp4``, ``seg_*.m4s``, ``seg_*.ts`` and
  (Low-Latency HLS) ``part_*.m4s``.

Low-Latency HLS (``hls.low_latency``, fMP4; docs/low-latency.md), on the media playlist:
``_HLS_msn=M[&_HLS_part=N]`` holds the response until segment M (part N of it) or
anything later exists (the rendition's condition, no polling): 400 for ``_HLS_part``
without ``_HLS_msn``, for malformed values and for requests too far ahead (M beyond the
last segment + 2, N beyond the last part by the Advance Part Limit), 503 when it does not
come within 3 target durations; the parameters are ignored once the playlist has
EXT-X-ENDLIST. ``_HLS_skip=YES`` (or ``v2``) answers with a delta update. A request for
the part named by EXT-X-PRELOAD-HINT waits until that part is complete and gets it whole;
any other unknown part is a 404.

A playlist request for a live stream that has no segment yet (its first closes at the
encoder's second keyframe) waits for it, 5 segment durations within 2–15 s; still none:
503 with ``Retry-After``, which players retry. A stream that does not exist (or ended
without any segment) is a 404 at once.

HEAD works on all of them, OPTIONS answers CORS preflights. Every name is checked against
a strict pattern (``mediasrv.hls.names``) before any lookup: a name outside the naming
scheme (a dot-dot, a slash smuggled in as ``%2F``, a backslash, NUL, an over-long name, a
file name no muxer writes) names no resource, so it is a 404 like an unknown stream,
rendition or file; 400 is kept for what is malformed in the request itself (the
Low-Latency HLS query parameters above). Lookups only ever go to in-memory dictionaries,
never the file system.

Caching (a CDN or nginx ``proxy_cache`` in front is correct with these): media playlists
``max-age=1``; the master playlist, which hands each viewer a session token,
``private, max-age=1`` (a shared cache must pass it through); init and media segments and parts ``public, max-age=86400, immutable``
(their names carry the broadcast's tag and never mean other bytes; a hinted part is only
answered once complete, so no partial body can be cached); errors ``no-store``.
Blocking-reload answers depend on their query string (caches key on it: nginx's default
``proxy_cache_key`` has ``$request_uri``) and are ``public, max-age=3×TARGETDURATION``:
every part and segment they list stays downloadable at least that long (parts for
3 target durations after they leave the playlist), so a cached answer never points at
a gone file, and concurrent viewers waiting for the same part share one answer.

Private streams (a creator's backstage, ``community.live``): every request is put to the
playback gate (``app[PLAYBACK]``, ``ports.PlaybackGate``) with the ``pt`` grant of its
query; refused, it is the 404 of a stream that does not exist, at once. Allowed, the
answer is ``private, no-store`` and every URI it lists (variants, init segments,
segments, parts, the preload hint, rendition reports) carries the grant, since a player
resolves them without the playlist's query.
A live that is not public by its visibility (followers, unlisted, private; issue 18) is
gated the same way, and its media playlists are re-signed at every request: every init
segment, segment and part URI also carries ``hs=EXPIRES.SIGNATURE``
(``httpkit.url_signing``, valid ``hls.url_signing_seconds``), which is what those
requests are checked with, here and by the nginx cache in front without asking
mediasrv (deploy/nginx-cache.conf); the playlists themselves still go through the gate,
so a viewer whose access was withdrawn gets a 404 at the next reload.
Those requests are not counted as viewers (no session, no bytes): a private broadcast's
players are its creator, their moderators and operators, not its audience, so its
viewers, peak and unique viewers count from when it is made public (a player that was
already watching counts from its first request after that).

Every answer is an ordinary aiohttp ``web.Response`` (``delivery.responses``); playlist
bytes are encoded once per playlist version by the HLS service. Serving many viewers is
the job of the nginx cache in front (deploy/, docs/scaling.md), which collapses them to
about one origin request per part.
"""

from __future__ import annotations

import re
import time

from aiohttp import web

from mediasrv.cluster.edge import EDGE_HEADER
from mediasrv.cluster.node import origin_of
from mediasrv.delivery.edge import edge_file, edge_master, edge_media
from mediasrv.delivery.hls_service import SOURCE, HlsService
from mediasrv.httpkit.clients import viewer_address
from mediasrv.httpkit.url_signing import SIGNED_URL_PARAM, UrlSigner
from mediasrv.delivery.responses import (
    CORS,
    RESTRICTED_CACHE,
    SEGMENT_CACHE,
    client_of,
    count_request,
    file_response,
    master_body,
    plain_error,
    playlist_response,
)
from mediasrv.hls import names
from mediasrv.hls.reload import BadReloadQuery, parse_reload_query
from mediasrv.httpkit.keys import HTTP_STATS, PLAYBACK, VIEWERS
from mediasrv.ports import OPEN_ACCESS, PLAYBACK_GRANT_PARAM, PlaybackAccess, playback_access

_HEADER_LIST = re.compile(r"[A-Za-z0-9\-, ]{0,512}")
#: Requests for the hinted part (and blocking reloads) wait at most this many target durations.
BLOCK_TARGETS = 3
#: Seconds a player is told to wait (``Retry-After``) before asking again for the playlist
#: of a live stream whose first segment is still being made.
RETRY_AFTER = 1


def setup(app: web.Application, service: HlsService, signer: UrlSigner | None = None) -> None:
    """Add the HLS routes, answered from ``service`` (built and started by the composition
    root); ``signer`` signs the media URIs of lives that are not public (without one,
    their media is opened by the playback grant alone)."""
    # How long a playlist request for a live stream that has no segment yet waits for its
    # first one: the encoder's keyframe interval decides when that is (OBS's "auto" is
    # 250 frames, 8 s at 30 fps), so a player is held 10 s with 2 s segments, within the
    # 20 s hls.js allows a playlist load and nginx's 30 s proxy_read_timeout. Still none:
    # 503 with Retry-After (first_segment), which players retry; 404 stays "no such stream".
    wait = min(15.0, max(2.0, 5 * service.segment_duration))

    async def first_segment(name: str, rendition: str) -> web.StreamResponse | None:
        """None once ``rendition`` lists a segment (waiting while it is starting); else the
        answer: 503 + Retry-After while it is still starting, 404 when there is no such
        live rendition (never published, or ended without any segment)."""
        if await service.wait_ready(name, rendition, timeout=wait):
            return None
        if service.is_starting(name, rendition):
            return plain_error(503, retry_after=RETRY_AFTER,
                               cause=f"{rendition} of {name} has no segment yet after {wait:g} s"
                                     " (the encoder's keyframe interval is longer than that?)")
        return plain_error(404)

    def access(request: web.Request, name: str, *, media: bool = False) -> PlaybackAccess:
        """The playback gate's answer for this request (anyone's for a public stream); for
        ``media`` (init segment, segment, part) of a stream that is not public, a valid URL
        signature (``hs``) is enough, as it is for the cache in front."""
        stream = service.broadcast(name)
        if stream is None:
            return OPEN_ACCESS
        if media and signer is not None and stream.restricted:
            signature = request.query.get(SIGNED_URL_PARAM, "")
            if signature and signer.valid(name, signature):
                return PlaybackAccess(True, restricted=True)
        return playback_access(request.app.get(PLAYBACK), stream, request.query.get(PLAYBACK_GRANT_PARAM, ""))

    def has_audience(name: str) -> bool:
        """Whether the players of ``name`` count as its audience: not while backstage."""
        stream = service.broadcast(name)
        return stream is None or not stream.private

    def _suffix(allowed: PlaybackAccess, name: str) -> str:
        """What every URI of a media playlist for this viewer carries: the grant and, with
        a signer, a fresh URL signature (re-signed at every request); or nothing."""
        carry = allowed.query()
        if not carry:
            return ""
        if signer is not None:
            carry = f"{carry}&{signer.query(name)}"
        return f"?{carry}"

    async def master(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not names.is_stream_name(name):
            return plain_error(404)
        allowed = access(request, name)
        if not allowed.allowed:
            return plain_error(404)
        origin = origin_of(request.app, name)
        if origin is not None:  # another node ingests it (docs/cluster.md)
            return await edge_master(request, origin, name)
        data = service.master_playlist_bytes(name)
        if data is None:
            refusal = await first_segment(name, SOURCE)
            if refusal is not None:
                return refusal
            data = service.master_playlist_bytes(name)
        if data is None:
            return plain_error(404)
        # Not counted: a request from an edge (it counts its own viewers), a backstage's
        # (its viewers are the creator's team, not an audience). A live that is not public
        # by its visibility (followers, unlisted, private) has an audience: counted.
        viewers = request.app.get(VIEWERS) if EDGE_HEADER not in request.headers and has_audience(name) else None
        return playlist_response(request, *master_body(service, viewers, name, data, lambda: client_of(request),
                                                       carry=allowed.query(),
                                                       address=lambda: viewer_address(request)))

    async def media(request: web.Request) -> web.StreamResponse:
        match_info = request.match_info
        name = match_info["name"]
        rendition = match_info["rendition"]
        if not names.is_stream_name(name) or not names.is_rendition_name(rendition):
            return plain_error(404)
        allowed = access(request, name)
        if not allowed.allowed:
            return plain_error(404)
        origin = origin_of(request.app, name)
        if origin is not None:
            return await edge_media(request, origin, name, rendition)
        delta = False
        msn = part = None
        if service.low_latency and request.query_string:
            try:
                directives = parse_reload_query(request.query)
            except BadReloadQuery:
                return plain_error(400)
            delta, msn, part = directives.skip, directives.msn, directives.part
        if msn is not None:
            return await blocking(request, name, rendition, msn, part, delta, allowed)
        suffix = _suffix(allowed, name)
        data = service.media_playlist_bytes(name, rendition, delta=delta, uri_suffix=suffix)
        if data is None:
            refusal = await first_segment(name, rendition)
            if refusal is not None:
                return refusal
            data = service.media_playlist_bytes(name, rendition, delta=delta, uri_suffix=suffix)
        if data is None:
            return plain_error(404)
        if has_audience(name):  # a backstage has no audience (see master)
            count_request(request, name, rendition, len(data))
        if allowed.restricted:
            return playlist_response(request, data, RESTRICTED_CACHE)
        return playlist_response(request, data)

    async def blocking(request: web.Request, name: str, rendition: str, msn: int, part: int | None,
                       delta: bool, allowed: PlaybackAccess) -> web.StreamResponse:
        """A blocking playlist reload (§6.2.5.2)."""
        r = service.rendition(name, rendition)
        if r is None and await service.wait_ready(name, rendition, timeout=wait):
            r = service.rendition(name, rendition)
        if r is None:
            return plain_error(404)
        segmenter = r.segmenter
        target = segmenter.target_duration
        if not segmenter.ended:
            if _too_far(segmenter, msn, part):
                return plain_error(400)
            if not segmenter.has_reached(msn, part):
                started = time.monotonic()
                reached = await service.wait_playlist(name, rendition, msn, part, timeout=BLOCK_TARGETS * target)
                stats = request.app.get(HTTP_STATS)
                if stats is not None:
                    stats.blocking_waits += 1
                    stats.blocking_wait_seconds += time.monotonic() - started
                if not reached:
                    wanted = f"segment {msn}" + (f" part {part}" if part is not None else "")
                    return plain_error(503, cause=f"blocking reload of {name}/{rendition}: {wanted} did not come"
                                                  f" within {BLOCK_TARGETS * target:g} s")
        data = service.media_playlist_bytes(name, rendition, delta=delta, require_segment=False,
                                            uri_suffix=_suffix(allowed, name))
        if data is None:
            return plain_error(404)
        if has_audience(name):  # a backstage has no audience (see master)
            count_request(request, name, rendition, len(data))
        if allowed.restricted:
            return playlist_response(request, data, RESTRICTED_CACHE)
        return playlist_response(request, data, f"public, max-age={BLOCK_TARGETS * segmenter.target_duration}")

    async def part_file(request: web.Request) -> web.StreamResponse:
        """A part: served from memory, or (the preload hint) once it is complete."""
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        file_name = "part_" + request.match_info["rest"]
        if not (names.is_stream_name(name) and names.is_rendition_name(rendition) and names.is_part_name(file_name)):
            return plain_error(404)  # not in the naming scheme: no such resource (HTTP semantics), not a bad request
        allowed = access(request, name, media=True)
        if not allowed.allowed:
            return plain_error(404)
        origin = origin_of(request.app, name)
        if origin is not None:
            return await edge_file(request, origin, name, rendition, file_name)
        data = service.get_file(name, rendition, file_name)
        if data is None:
            r = service.rendition(name, rendition)
            timeout = BLOCK_TARGETS * (r.segmenter.target_duration if r is not None else 1)
            data = await service.wait_part(name, rendition, file_name, timeout=timeout)
        if data is None:
            return plain_error(404)
        return file_response(request, name, file_name, data, cache=_file_cache(allowed),
                             counted=has_audience(name))

    async def file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rendition = request.match_info["rendition"]
        file_name = request.match_info["file"]
        if not (names.is_stream_name(name) and names.is_rendition_name(rendition) and names.is_file_name(file_name)):
            return plain_error(404)  # not in the naming scheme: no such resource (HTTP semantics), not a bad request
        allowed = access(request, name, media=True)
        if not allowed.allowed:
            return plain_error(404)
        origin = origin_of(request.app, name)
        if origin is not None:
            return await edge_file(request, origin, name, rendition, file_name)
        data = service.get_file(name, rendition, file_name)
        if data is None:
            if names.is_part_name(file_name):  # the part route takes these; kept for safety
                return await part_file_named(request, name, rendition, file_name, allowed)
            return plain_error(404)
        return file_response(request, name, file_name, data, cache=_file_cache(allowed),
                             counted=has_audience(name))

    async def part_file_named(request: web.Request, name: str, rendition: str, file_name: str,
                              allowed: PlaybackAccess) -> web.StreamResponse:
        r = service.rendition(name, rendition)
        timeout = BLOCK_TARGETS * (r.segmenter.target_duration if r is not None else 1)
        data = await service.wait_part(name, rendition, file_name, timeout=timeout)
        if data is None:
            return plain_error(404)
        return file_response(request, name, file_name, data, cache=_file_cache(allowed),
                             counted=has_audience(name))

    async def preflight(request: web.Request) -> web.StreamResponse:
        asked = request.headers.get("Access-Control-Request-Headers", "")
        allow = asked if asked and _HEADER_LIST.fullmatch(asked) else "Range"
        return web.Response(status=204, headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": allow,
            "Access-Control-Max-Age": "86400",
        })

    # No catch-all: a path of any other shape matches no route and gets the router's 404.
    # Most requested first (the router tries the /live resources in this order); the
    # media playlist must come before {file}, which would match index.m3u8 too.
    for path, handler in (
        ("/live/{name}/{rendition}/index.m3u8", media),
        ("/live/{name}/{rendition}/part_{rest}", part_file),
        ("/live/{name}/{rendition}/{file}", file),
        ("/live/{name}/index.m3u8", master),
    ):
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, preflight)


def _file_cache(allowed: PlaybackAccess) -> str:
    return RESTRICTED_CACHE if allowed.restricted else SEGMENT_CACHE


def _too_far(segmenter, msn: int, part: int | None) -> bool:
    """§6.2.5.2: ``_HLS_msn`` beyond the last segment + 2, or ``_HLS_part`` beyond the last
    part by more than the Advance Part Limit (3 / PART-TARGET below 1 s, else 3)."""
    if msn > segmenter.last_msn + 2:
        return True
    if part is None or segmenter.part_target_ms is None:
        return False
    part_target = segmenter.part_target_ms / 1000
    limit = 3 / part_target if part_target < 1 else 3
    last = segmenter.last_part()
    last_msn, last_index = last if last is not None else (segmenter.last_msn, -1)
    if msn == last_msn:
        return part - last_index > limit
    if msn > last_msn:
        return part + 1 > limit  # at least parts 0..part of msn lie ahead
    return False
