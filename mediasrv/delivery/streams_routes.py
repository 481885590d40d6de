"""JSON API: stream listing and health.

A private stream (a creator's backstage) is not listed; ``GET /api/streams/NAME`` answers
it only with a valid grant (``?pt=``, the playback gate), else the 404 of a stream that
does not exist."""

from __future__ import annotations

import time

from aiohttp import web

from mediasrv import __version__
from mediasrv.cluster.node import origin_of
from mediasrv.config import STREAM_NAME_RE
from mediasrv.delivery import models as m
from mediasrv.httpkit.body import respond
from mediasrv.httpkit.keys import CLUSTER, HLS_SERVICE, HUB, PLAYBACK, REQUESTER, STARTED_AT
from mediasrv.httpkit.models import GRANT_QUERY, STREAM_NAME_PARAM
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.urls import public_base_url, rtmp_base_url
from mediasrv.httpkit.validate import ApiError
from mediasrv.media.types import TrackKind
from mediasrv.ports import PLAYBACK_GRANT_PARAM, playback_access








def setup(app: web.Application) -> None:
    add_route(app, "GET", "/healthz", healthz, op("Liveness", tag="meta", ok_schema=m.Health))
    add_route(app, "GET", "/api/streams", list_streams, op(
        "Live streams (technical view)", tag="streams", ok_schema=m.StreamList))
    add_route(app, "GET", "/api/streams/{name}", get_stream, op(
        "One live stream", tag="streams",
        params=[path_param("name", "public stream name", STREAM_NAME_PARAM), GRANT_QUERY],
        ok_schema=m.Stream, errors=[404]))


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    return respond(m.Health, {
        "status": "ok",
        "version": __version__,
        "uptime_seconds": round(time.time() - app[STARTED_AT], 3),
        "streams": len(app[HUB].streams()),
    })


def _stream_json(request: web.Request, stream) -> dict:

    base = public_base_url(request)
    tracks = []
    for kind in (TrackKind.VIDEO, TrackKind.AUDIO):
        track = stream.tracks.get(kind)
        if track is None:
            continue
        entry = {"kind": kind.value, "codec": track.codec.value, "codec_string": track.codec_string}
        if kind is TrackKind.VIDEO:
            entry.update(width=track.width, height=track.height)
            fps = stream.metadata.get("framerate")
            if isinstance(fps, (int, float)) and fps > 0:
                entry["frame_rate"] = fps
        else:
            entry.update(sample_rate=track.sample_rate, channels=track.channels)
        tracks.append(entry)
    started = stream.started_at
    elapsed = max(1e-3, time.time() - started)
    service = request.app.get(HLS_SERVICE)
    renditions = service.renditions(stream.name) if service is not None else []
    return {
        "name": stream.name,
        "state": stream.state.value,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "tracks": tracks,
        "bitrate_in_kbps": round(stream.stats.bytes_in * 8 / elapsed / 1000, 1),
        "renditions": renditions,
        "playback_url": f"{base}/live/{stream.name}/index.m3u8",
        "rtmp_playback_url": f"{rtmp_base_url(request)}/{stream.name}",
    }


def _remote_json(request: web.Request, entry) -> dict:
    """A stream another node of the cluster ingests (served here too; docs/cluster.md)."""
    return {
        "name": entry.name,
        "state": "live",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.started_at)),
        "origin": entry.node,
        "playback_url": f"{public_base_url(request)}/live/{entry.name}/index.m3u8",
    }


async def list_streams(request: web.Request) -> web.Response:

    streams = sorted(request.app[HUB].public_streams(), key=lambda s: s.started_at)
    if any(s.mature for s in streams):
        # An 18+ live is listed for signed-in viewers only (issue 18), as in discovery.
        requester = request.app.get(REQUESTER)
        try:
            signed_in = requester is not None and await requester(request) is not None
        except ApiError:
            signed_in = False
        if not signed_in:
            streams = [s for s in streams if not s.mature]
    items = [_stream_json(request, s) for s in streams]
    bus = request.app.get(CLUSTER)
    if bus is not None:
        local = {s.name for s in request.app[HUB].streams()}
        items += [_remote_json(request, e) for e in sorted(bus.remote_streams(), key=lambda e: e.started_at)
                  if e.name not in local]
    return respond(m.StreamList, {"streams": items})


async def get_stream(request: web.Request) -> web.Response:

    name = request.match_info["name"]
    stream = request.app[HUB].get(name) if STREAM_NAME_RE.fullmatch(name) else None
    grant = request.query.get(PLAYBACK_GRANT_PARAM, "")
    if stream is not None and not playback_access(request.app.get(PLAYBACK), stream, grant).allowed:
        return web.json_response({"error": "no such live stream"}, status=404)
    if stream is None:
        origin = origin_of(request.app, name) if STREAM_NAME_RE.fullmatch(name) else None
        if origin is not None:
            return respond(m.Stream, _remote_json(request, origin))
        return web.json_response({"error": "no such live stream"}, status=404)
    return respond(m.Stream, _stream_json(request, stream))




