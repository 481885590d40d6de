"""The browser pages: discovery (``/``), watch (``/watch/NAME``), creator studio
(``/studio``), operator pages (``/admin``) and account settings (``/settings``), plus their static assets under ``/web/``.
See docs/web.md.

The pages are static shells (``mediasrv/web/*.html``) whose ES modules call the JSON API
with a bearer token kept in ``localStorage``; no server data is ever put into a page
here, so there is nothing to escape. Pages are ``no-cache`` (always revalidated, so a new
version shows at once); assets are cached for a short while and revalidated by ETag.

Also here: ``POST /api/streams/NAME/stop`` (admin), which ends a live stream and closes
its publisher — the operator page's stop button.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mediasrv.community.accounts.http import require_user
from mediasrv.config import Config, STREAM_NAME_RE
from mediasrv.httpkit.body import respond
from mediasrv.httpkit.keys import HUB
from mediasrv.httpkit.models import ResponseModel
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


def _page(filename: str):
    path = WEB_DIR / filename

    async def handler(request: web.Request) -> web.StreamResponse:
        if "name" in request.match_info and not STREAM_NAME_RE.fullmatch(request.match_info["name"]):
            raise web.HTTPNotFound(text="no such stream name")
        return web.FileResponse(path, headers={
            "Content-Type": "text/html; charset=utf-8", "Cache-Control": PAGE_CACHE, **_SECURITY_HEADERS})

    handler.__name__ = f"page_{path.stem}"
    return handler


async def asset(request: web.Request) -> web.StreamResponse:
    """A file under mediasrv/web/ (never outside it; no directory listings)."""
    relative = request.match_info["path"]
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise web.HTTPNotFound()
    path = (WEB_DIR / relative).resolve()
    if WEB_DIR not in path.parents or not path.is_file() or path.suffix.lower() not in _TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={
        "Content-Type": _TYPES[path.suffix.lower()], "Cache-Control": ASSET_CACHE, "X-Content-Type-Options": "nosniff"})


async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them the SVG icon."""
    raise web.HTTPMovedPermanently("/web/icon.svg")


class Stopped(ResponseModel):
    stream: str
    stopped: bool


async def stop_stream(request: web.Request) -> web.Response:
    """Admin: end a live stream now; its publisher is disconnected (the encoder sees an
    error status). The creator can go live again unless their live access is revoked."""
    await require_user(request, "admin")
    name = request.match_info["name"]
    if not STREAM_NAME_RE.fullmatch(name) or not request.app[HUB].stop(name):
        raise ApiError(404, "no such live stream")
    return respond(Stopped, {"stream": name, "stopped": True})


def setup(app: web.Application, config: Config) -> None:
    """Add the page routes, ``/web/{path}`` and ``POST /api/streams/{name}/stop``."""
    app.router.add_get("/", _page("index.html"))
    app.router.add_get("/watch/{name}", _page("watch.html"))
    app.router.add_get("/studio", _page("studio.html"))
    app.router.add_get("/admin", _page("admin.html"))
    app.router.add_get("/settings", _page("settings.html"))
    app.router.add_get("/web/{path:.+}", asset)
    app.router.add_get("/favicon.ico", favicon)
    add_route(app, "POST", "/api/streams/{name}/stop", stop_stream, op(
        "Stop a live stream (operator)", tag="streams", role="admin",
        params=[path_param("name", "the live stream", {"type": "string"})],
        description="Ends the stream at once and disconnects its publisher (the encoder gets "
                    "`NetStream.Publish.BadName` with the reason). The recording, if any, ends as after a normal "
                    "end and waits for the creator's decision. Nothing stops the creator from publishing again: "
                    "revoke their live access (`PUT /api/users/HANDLE/live-access`) for that.",
        ok_schema=Stopped,
        errors=[404]))
