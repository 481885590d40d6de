"""The browser pages: discovery (``/``), watch (``/watch/NAME``), creator studio
(``/studio``, and ``/studio/live`` to go live from the browser over WHIP), operator pages (``/admin``), account settings (``/settings``) and the page a
verification mail's link lands on (``/verify-email``), plus their static assets under ``/web/``.
See docs/web.md.

The pages are static shells (``mediasrv/web/*.html``) whose ES modules call the JSON API
with a bearer token kept in ``localStorage``; no server data is ever put into a page
here, so there is nothing to escape. Pages are ``no-cache`` (always revalidated, so a new
version shows at once); assets are cached for a short while and revalidated by ETag.

``/watch/NAME`` of a name that is no channel (no account of that handle, not a public
name of ``auth.keys``, not live here or on another node, no recording) is the site's
404 page (``notfound.html``) with status 404, not an offline channel with a Follow button.
In ``auth.mode: open`` and ``webhook`` any name may go live, so every valid name keeps the
channel page (it waits for the stream; without an account it offers no Follow or gifts).

Also here: ``POST /api/streams/NAME/stop`` (admin), which ends a live stream and closes
its publisher — the operator page's stop button — with a reason the viewers and the
creator are shown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from mediasrv.community.accounts.http import require_user
from mediasrv.config import Config, STREAM_NAME_RE
from mediasrv.httpkit.body import read_optional_body, respond
from mediasrv.httpkit.keys import ACCOUNTS, CLUSTER, CONFIG, HUB, RECORDER
from mediasrv.httpkit.models import RequestModel, ResponseModel, text
from mediasrv.httpkit.openapi import add_route, op, path_param
from mediasrv.httpkit.validate import ApiError







WEB_DIR = Path(__file__).resolve().parent.parent / "web"

#: Assets: a short cache, then revalidation (ETag / Last-Modified from FileResponse).
ASSET_CACHE = "public, max-age=300"
PAGE_CACHE = "no-cache"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# The pages load only this server's scripts and styles (no inline script: a stray
# injection cannot run). hls.js builds its worker from a blob: URL and plays through
# MediaSource (blob: media). Gift images may be absolute http(s) URLs (config).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
       "media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _html(path: Path, status: int = 200) -> web.FileResponse:
    return web.FileResponse(path, status=status, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": PAGE_CACHE, **_SECURITY_HEADERS})


def _page(filename: str):
    path = WEB_DIR / filename

    async def handler(request: web.Request) -> web.StreamResponse:
        return _html(path)

    handler.__name__ = f"page_{path.stem}"
    return handler


async def watch_page(request: web.Request) -> web.StreamResponse:
    """The channel page, or the site's 404 page when the name is no channel. The 404 page
    is static too: its script reads the name from the address (never put into HTML here)."""
    name = request.match_info["name"]
    if STREAM_NAME_RE.fullmatch(name) and ("vod" in request.query or await _is_channel(request.app, name)):
        return _html(WEB_DIR / "watch.html")
    return _html(WEB_DIR / "notfound.html", status=404)


async def _is_channel(app: web.Application, name: str) -> bool:
    """Whether ``/watch/NAME`` has something to show now or later: a live stream (here or
    on another node), an account of that handle, a public name of ``auth.keys``, any name
    in the modes where a publisher picks the name (``open``, ``webhook``: a viewer may open
    the page before the push starts), or a recording of that name."""
    config = app[CONFIG]
    if app[HUB].get_public(name) is not None or config.auth.mode in ("open", "webhook") or name in config.auth.keys.values():
        return True
    bus = app.get(CLUSTER)
    if bus is not None and bus.origin(name) is not None:
        return True
    accounts = app.get(ACCOUNTS)
    if accounts is not None and await accounts.get_user(name.lower()) is not None:
        return True
    recorder = app.get(RECORDER)
    store = recorder.store if recorder is not None else None
    return store is not None and bool(await asyncio.to_thread(store.list, stream=name, limit=1))


async def asset(request: web.Request) -> web.StreamResponse:
    """A file under mediasrv/web/ (never outside it; no directory listings)."""
    relative = request.match_info["path"]
    parts = relative.split("/")
    if "\x00" in relative or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise web.HTTPNotFound()  # a NUL (%00) would make the path look-up raise: a 500
    try:
        path = (WEB_DIR / relative).resolve()
        found = WEB_DIR in path.parents and path.is_file() and path.suffix.lower() in _TYPES
    except (OSError, ValueError):
        # A name the file system refuses (ENAMETOOLONG, found by
        # tests/security/test_route_sweep.py: a 500) is no asset either.
        found = False
    if not found:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={
        "Content-Type": _TYPES[path.suffix.lower()], "Cache-Control": ASSET_CACHE, "X-Content-Type-Options": "nosniff"})


async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them the SVG icon."""
    raise web.HTTPMovedPermanently("/web/icon.svg")


#: What viewers and the creator read when the operator gave no reason.
STANDARD_STOP_REASON = "An operator stopped this stream."


class StopRequest(RequestModel):
    reason: text(200) = ""


class Stopped(ResponseModel):
    stream: str
    stopped: bool
    reason: str


async def stop_stream(request: web.Request) -> web.Response:
    """Admin: end a live stream now; its publisher is disconnected (the encoder sees an
    error status). The reason (or the standard one) reaches the watch pages (chat
    ``stream-ended``) and the studio (the stats feed's ``ended``). The creator can go live
    again unless their live access is revoked."""
    await require_user(request, "admin")
    body = await read_optional_body(request, StopRequest)
    name = request.match_info["name"]
    reason = body.reason or STANDARD_STOP_REASON
    if not STREAM_NAME_RE.fullmatch(name) or not request.app[HUB].stop(name, reason):
        raise ApiError(404, "no such live stream")
    return respond(Stopped, {"stream": name, "stopped": True, "reason": reason})


def setup(app: web.Application, config: Config) -> None:
    """Add the page routes, ``/web/{path}`` and ``POST /api/streams/{name}/stop``."""
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/watch/{name}", watch_page)
    app.router.add_get("/studio", _page("studio.html"))
    app.router.add_get("/studio/live", _page("golive.html"))  # go live from the browser (WHIP)
    app.router.add_get("/admin", _page("admin.html"))
    app.router.add_get("/settings", _page("settings.html"))
    app.router.add_get("/verify-email", _page("verify-email.html"))  # a verification mail's link lands here
    app.router.add_get("/web/{path:.+}", asset)
    app.router.add_get("/favicon.ico", favicon)
    add_route(app, "POST", "/api/streams/{name}/stop", stop_stream, op(
        "Stop a live stream (operator)", tag="streams", role="admin",
        params=[path_param("name", "the live stream", {"type": "string"})],
        body=StopRequest, body_required=False,
        description="Ends the stream at once and disconnects its publisher (the encoder gets "
                    "`NetStream.Publish.BadName` with the reason). The reason (at most 200 characters; left out "
                    "or empty: \"An operator stopped this stream.\") is shown to the viewers (chat `stream-ended` "
                    "frame's `reason`) and to the creator (`ended` on `/api/streams/NAME/events`). The recording, if any, ends as after a normal "
                    "end and waits for the creator's decision. Nothing stops the creator from publishing again: "
                    "revoke their live access (`PUT /api/users/HANDLE/live-access`) for that.",
        ok_schema=Stopped,
        errors=[404]))
