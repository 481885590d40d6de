"""``GET /hls-seen/live/{name}/{rendition}/{file}``: a cache in front tells mediasrv that
one of its viewers fetched a media file.

A viewer counts once it fetches media, not a playlist (``observe.viewers``). Behind the
nginx cache (deploy/nginx-cache.conf) most media requests are cache hits that never reach
mediasrv, so the cache mirrors each one here (nginx ``mirror``): a request with no body
and the viewer's headers (``X-Forwarded-For``, ``User-Agent``), answered ``204`` at once,
that counts exactly as serving the file would (``responses.count_media``). Only a trusted
proxy (``http.trusted_proxies``) may send it; from anyone else it is a ``404``, so a
client cannot count as a viewer without fetching media. For a live that not everyone
may play (backstage, or not public by its visibility) the mirrored URI must carry a
valid signature (``hs``) or playback grant (``pt``), as the file itself must: a request
the origin refuses is mirrored too, and a refused player is no viewer.
"""

from __future__ import annotations

from aiohttp import web

from mediasrv.delivery.responses import ERROR_CACHE, count_media
from mediasrv.hls import names
from mediasrv.httpkit.clients import from_trusted_proxy
from mediasrv.httpkit.keys import HUB, PLAYBACK, URL_SIGNER, VIEWERS
from mediasrv.httpkit.url_signing import SIGNED_URL_PARAM
from mediasrv.ports import PLAYBACK_GRANT_PARAM, playback_access

PATH = "/hls-seen/live/{name}/{rendition}/{file}"


def setup(app: web.Application) -> None:
    """Add the route (not an API operation: only a cache in front calls it)."""
    app.router.add_get(PATH, media_seen)


async def media_seen(request: web.Request) -> web.Response:
    """Count a media request a trusted cache answered for one of its viewers."""
    if not from_trusted_proxy(request):
        return web.Response(status=404, text="not found\n", headers={"Cache-Control": ERROR_CACHE})
    match = request.match_info
    name, rendition, file_name = match["name"], match["rendition"], match["file"]
    viewers = request.app.get(VIEWERS)
    hub = request.app.get(HUB)
    if (viewers is not None and names.is_stream_name(name) and names.is_rendition_name(rendition)
            and (names.is_file_name(file_name) or names.is_part_name(file_name))):
        stream = hub.get(name) if hub is not None else None
        # A stream of another node (an edge) is counted here too: its playlists are.
        if stream is None or not stream.restricted or _may_play(request, stream):
            count_media(request, viewers, name, file_name, 0)
    return web.Response(status=204, headers={"Cache-Control": ERROR_CACHE})


def _may_play(request: web.Request, stream) -> bool:
    """Whether the mirrored media request of a restricted stream would have been served:
    a valid URL signature, or a grant the playback gate accepts."""
    signer = request.app.get(URL_SIGNER)
    signature = request.query.get(SIGNED_URL_PARAM, "")
    if signer is not None and signature and signer.valid(stream.name, signature):
        return True
    grant = request.query.get(PLAYBACK_GRANT_PARAM, "")
    return bool(grant) and playback_access(request.app.get(PLAYBACK), stream, grant).allowed
