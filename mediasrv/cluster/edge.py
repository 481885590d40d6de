"""``OriginFetcher``: a node serving another node's stream fetches each thing once.

- **Files** (init segments, segments, parts) are immutable (their names carry the
  broadcast's tag, docs/low-latency.md): fetched once, kept in a small LRU cache bounded in
  bytes (``cluster.edge_cache_mb``), keyed by path.
- **Requests in flight are shared**: N viewers asking for the same file, or the same
  playlist with the same blocking parameters (rendition, ``_HLS_msn``, ``_HLS_part``,
  ``_HLS_skip``), wait on one origin request. A request for the preload-hinted part is held
  at the origin until the part is complete, so they all get it as soon as it exists.
- **Blocking-reload answers** are kept as long as the origin's ``max-age`` says (they list
  at least the part asked for, and stay valid that long, docs/low-latency.md), so viewers
  arriving just after the answer came get it too. Plain playlist loads (a player's first,
  or a player without LL-HLS) are kept at most ``PLAIN_PLAYLIST_SECONDS`` (a micro-cache:
  many players starting at once cost one origin request, and what they get is at most
  that old; their next blocking reload catches up).

The fetch runs in its own task: a viewer that goes away does not cancel it for the others.
Only 200 answers are cached; errors (404, 503 ...) are passed to the waiting viewers.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from dataclasses import dataclass
from typing import Callable

import aiohttp

#: Header an edge sends to the origin: the origin neither counts it as a viewer nor hands
#: it a session token (the edge counts its own viewers).
EDGE_HEADER = "X-Mediasrv-Edge"
#: Most playlist answers kept.
PLAYLIST_CACHE_ENTRIES = 512
#: Seconds a plain (not blocking) playlist answer is shared (never more than its max-age).
PLAIN_PLAYLIST_SECONDS = 0.5
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True, slots=True)
class Fetched:
    """An origin's answer: status, body and its Cache-Control."""

    status: int
    body: bytes
    cache_control: str = ""


class OriginError(Exception):
    """The origin could not be reached or did not answer in time."""


class OriginFetcher:
    """Fetches from origin nodes over HTTP, coalescing requests and caching files."""

    def __init__(self, node_id: str, *, cache_bytes: int, timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node_id = node_id
        self.cache_bytes = cache_bytes
        self.timeout = timeout
        self.clock = clock
        self.session: aiohttp.ClientSession | None = None
        self._files: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._files_size = 0
        self._playlists: collections.OrderedDict[tuple, tuple[float, Fetched]] = collections.OrderedDict()
        self._inflight: dict[tuple, asyncio.Task] = {}
        # Plain counters, read at scrape time.
        self.origin_requests = 0
        self.cache_hits = 0
        self.coalesced = 0
        self.origin_errors = 0

    async def start(self) -> None:
        # Own connection pool: a few held blocking reloads per rendition plus file fetches.
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=256)
        self.session = aiohttp.ClientSession(
            connector=connector, headers={EDGE_HEADER: self.node_id},
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=3))

    async def stop(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def file(self, base_url: str, path: str) -> Fetched:
        """An immutable file (``path`` like ``/live/NAME/REND/part_…``): cache, else one
        request shared by every viewer asking meanwhile."""
        data = self._files.get(path)
        if data is not None:
            self._files.move_to_end(path)
            self.cache_hits += 1
            return Fetched(200, data)
        return await self._shared(("file", path), lambda: self._fetch_file(base_url, path))

    async def playlist(self, base_url: str, path: str, query: dict[str, str], *, blocking: bool) -> Fetched:
        """A playlist. ``query`` holds only the HLS parameters (never a viewer's token);
        ``blocking`` answers (``_HLS_msn`` given) are cached for their ``max-age``, others
        for at most ``PLAIN_PLAYLIST_SECONDS``."""
        key = ("playlist", path, tuple(sorted(query.items())))
        cached = self._playlists.get(key)
        if cached is not None:
            if self.clock() < cached[0]:
                self.cache_hits += 1
                return cached[1]
            del self._playlists[key]
        return await self._shared(key, lambda: self._fetch_playlist(base_url, path, query, key, blocking))

    async def _shared(self, key: tuple, fetch: Callable) -> Fetched:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(fetch())
            self._inflight[key] = task
            task.add_done_callback(lambda _, key=key: self._inflight.pop(key, None))
        else:
            self.coalesced += 1
        # shield: a viewer that disconnects cancels its wait, not the shared fetch.
        return await asyncio.shield(task)

    async def _get(self, url: str, params: dict[str, str] | None = None) -> Fetched:
        if self.session is None:
            raise OriginError("the edge is not running")
        self.origin_requests += 1
        try:
            async with self.session.get(url, params=params) as response:
                body = await response.read()
                return Fetched(response.status, body, response.headers.get("Cache-Control", ""))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self.origin_errors += 1
            raise OriginError(f"{type(exc).__name__}: {exc}") from None

    async def _fetch_file(self, base_url: str, path: str) -> Fetched:
        fetched = await self._get(base_url + path)
        if fetched.status == 200 and len(fetched.body) <= self.cache_bytes // 4:
            self._files[path] = fetched.body
            self._files_size += len(fetched.body)
            while self._files_size > self.cache_bytes:
                _, old = self._files.popitem(last=False)
                self._files_size -= len(old)
        return fetched

    async def _fetch_playlist(self, base_url: str, path: str, query: dict[str, str], key: tuple,
                              blocking: bool) -> Fetched:
        fetched = await self._get(base_url + path, query or None)
        control = fetched.cache_control
        match = _MAX_AGE.search(control)
        if fetched.status == 200 and match is not None and "private" not in control and "no-store" not in control:
            seconds = float(match.group(1)) if blocking else min(float(match.group(1)), PLAIN_PLAYLIST_SECONDS)
            if seconds > 0:
                self._playlists[key] = (self.clock() + seconds, fetched)
                while len(self._playlists) > PLAYLIST_CACHE_ENTRIES:
                    self._playlists.popitem(last=False)
        return fetched

    def memory_bytes(self) -> int:
        return self._files_size
