"""JSON API: stream listing and health."""

from __future__ import annotations

import time

from aiohttp import web

from mediasrv import __version__
from mediasrv.config import STREAM_NAME_RE
from mediasrv.httpkit.keys import HUB, STARTED_AT
from mediasrv.media.types import TrackKind
from mediasrv.cluster.node import origin_of
from mediasrv.httpkit.keys import CLUSTER
from mediasrv.httpkit.keys import HLS_SERVICE
from mediasrv.httpkit.urls import public_base_url, rtmp_base_url


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/streams", list_streams)
    app.router.add_get("/api/streams/{name}", get_stream)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_seconds": round(time.time() - app[STARTED_AT], 3),
            "streams": len(app[HUB].streams()),
        }
    )


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

    streams = sorted(request.app[HUB].streams(), key=lambda s: s.started_at)
    items = [_stream_json(request, s) for s in streams]
    bus = request.app.get(CLUSTER)
    if bus is not None:
        local = {s.name for s in streams}
        items += [_remote_json(request, e) for e in sorted(bus.remote_streams(), key=lambda e: e.started_at)
                  if e.name not in local]
    return web.json_response({"streams": items})


async def get_stream(request: web.Request) -> web.Response:

    name = request.match_info["name"]
    stream = request.app[HUB].get(name) if STREAM_NAME_RE.fullmatch(name) else None
    if stream is None:
        origin = origin_of(request.app, name) if STREAM_NAME_RE.fullmatch(name) else None
        if origin is not None:
            return web.json_response(_remote_json(request, origin))
        return web.json_response({"error": "no such live stream"}, status=404)
    return web.json_response(_stream_json(request, stream))




