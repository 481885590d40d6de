"""``ClusterBus``: one node's side of the shared Redis (docs/cluster.md).

Every ``cluster.heartbeat`` seconds the node writes, in one MULTI/EXEC:

- its liveness key (``P:node:ID``),
- a directory key per live stream it ingests (``P:stream:NAME``: "this node is the origin"),
- its viewer counts (``P:viewers:ID``: hash stream -> sessions counted here),

each with a ``cluster.directory_ttl`` expiry, and then reads back the directory, the live
nodes and their viewer counts. A node that dies stops refreshing: Redis expires its keys,
and the other nodes drop its streams at their next heartbeat after that, so a dead
origin leaves the directory within ``directory_ttl + heartbeat`` seconds.

Events that should not wait for a heartbeat travel over pub/sub: chat frames (one channel
per room), go-live alerts, and directory events (a stream started or ended). Everything
this node sends (commands and publishes) goes through one queue drained by one task in
pipelines, so the other nodes see it in the order it was sent (a room's messages stay in
order). Messages a node published itself come back to it and are ignored (``node`` field).

Redis being unreachable never stops the node: its own streams, viewers and chats go on;
heartbeats and publishes are retried (what could not be sent is dropped and counted);
entries of other nodes not confirmed for ``directory_ttl`` are forgotten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from mediasrv.cluster.keys import Keys
from mediasrv.config import ClusterConfig

log = logging.getLogger("mediasrv.cluster")

#: Items (commands and publishes) that may wait for Redis; more are dropped and counted.
QUEUE_LIMIT = 10_000
#: Most items sent in one pipeline.
BATCH = 512
#: Seconds between reconnection attempts after a Redis error.
RETRY = 0.5

# Delete a directory key only if this node still owns it (another node may have taken
# the stream over meanwhile).
_DELETE_IF_OWNER = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['node'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(slots=True)
class DirectoryEntry:
    """Where a stream is ingested: its origin node and that node's advertised URL."""

    name: str
    node: str
    url: str
    started_at: float
    #: When this node last saw the entry in Redis or in an event (monotonic clock).
    seen: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"node": self.node, "url": self.url, "started_at": self.started_at},
                          separators=(",", ":"))


class ClusterBus:
    """The node's Redis connection: heartbeat, directory, viewer counts, pub/sub."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        node_id: str,
        advertise_url: str,
        local_streams: Callable[[], list[tuple[str, float]]],
        local_viewers: Callable[[], dict[str, int]],
        on_chat: Callable[[str, dict], None] | None = None,
        on_alert: Callable[[dict], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.url = advertise_url.rstrip("/")
        self.keys = Keys(config.key_prefix)
        self.local_streams = local_streams
        self.local_viewers = local_viewers
        self.clock = clock
        self.ttl_ms = int(config.directory_ttl * 1000)
        self.redis: Any = None
        #: Streams whose origin is another node, by name.
        self.directory: dict[str, DirectoryEntry] = {}
        #: Viewer sessions counted on the other live nodes, by stream.
        self.remote_viewers: dict[str, int] = {}
        #: The live nodes (this one included), by id: their liveness JSON.
        self.nodes: dict[str, dict] = {}
        #: Receivers of pub/sub messages: ``chat(room, frame)``, ``alert(message)``.
        self.on_chat = on_chat
        self.on_alert = on_alert
        #: Set once the subscriptions are in place (messages sent before are not seen).
        self.subscribed = asyncio.Event()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self._tasks: list[asyncio.Task] = []
        self._announced: set[str] = set()
        #: Streams other nodes said ended, and when (monotonic): a heartbeat whose read
        #: began before must not bring them back.
        self._ended: dict[str, float] = {}
        # Plain counters, read at scrape time.
        self.heartbeats = 0
        #: The longest heartbeat so far, seconds (write + read; a slow one risks expiry).
        self.slowest_beat = 0.0
        self.heartbeat_failures = 0
        self.sent = 0
        self.dropped = 0
        self.received = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start the heartbeat, the subscriber and the sender. An unreachable
        Redis is logged and retried; the node runs on alone meanwhile."""
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(self.config.redis_url, decode_responses=True,
                                       socket_connect_timeout=3, socket_timeout=5)
        try:
            await self.beat()
        except Exception as exc:
            self.heartbeat_failures += 1
            log.warning("cluster: Redis is not reachable (%s); retrying every %g s", _describe(exc),
                        self.config.heartbeat)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._heartbeat_loop(), name="cluster-heartbeat"),
            loop.create_task(self._subscriber_loop(), name="cluster-subscriber"),
            loop.create_task(self._sender_loop(), name="cluster-sender"),
        ]

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop. ``graceful``: send what is queued and remove this node's keys now (its
        streams leave the directory at once); otherwise they expire like a dead node's."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        if self.redis is None:
            return
        if graceful:
            try:
                async with asyncio.timeout(3):
                    while not self._queue.empty():
                        await self._send(self._drain_queue())
                    pipe = self.redis.pipeline(transaction=True)
                    pipe.delete(self.keys.node(self.node_id), self.keys.viewers(self.node_id))
                    for name in self._announced:
                        pipe.eval(_DELETE_IF_OWNER, 1, self.keys.stream(name), self.node_id)
                    await pipe.execute()
            except Exception as exc:
                log.warning("cluster: could not remove this node's keys (%s); they expire", _describe(exc))
        try:
            await self.redis.aclose()
        except Exception:
            pass

    # --- the directory and the counts ---------------------------------------------------

    def origin(self, name: str) -> DirectoryEntry | None:
        """The directory entry of a stream ingested by another node (recently confirmed)."""
        entry = self.directory.get(name)
        if entry is None or self.clock() - entry.seen > self.config.directory_ttl:
            return None
        return entry

    def remote_streams(self) -> list[DirectoryEntry]:
        """Every stream of the cluster whose origin is another node."""
        return [entry for name, entry in list(self.directory.items()) if self.origin(name) is not None]

    def total_viewers(self, name: str, local: int) -> int:
        """Viewer sessions of ``name`` on every live node: ``local`` (counted here) plus the
        other nodes' counts as of the last heartbeat."""
        return local + self.remote_viewers.get(name, 0)

    async def beat(self) -> None:
        """One heartbeat: write this node's keys, read the cluster's (see the module doc)."""
        redis, keys, px = self.redis, self.keys, self.ttl_ms
        began = self.clock()
        streams = self.local_streams()
        viewers = {name: count for name, count in self.local_viewers().items() if count > 0}
        pipe = redis.pipeline(transaction=True)
        pipe.set(keys.node(self.node_id), json.dumps({"node": self.node_id, "url": self.url,
                                                       "ingest": self.config.ingest}), px=px)
        for name, started_at in streams:
            pipe.set(keys.stream(name), DirectoryEntry(name, self.node_id, self.url, started_at).to_json(), px=px)
        pipe.delete(keys.viewers(self.node_id))
        if viewers:
            pipe.hset(keys.viewers(self.node_id), mapping=viewers)
            pipe.pexpire(keys.viewers(self.node_id), px)
        await pipe.execute()
        self._announced.update(name for name, _ in streams)

        read_started = self.clock()
        stream_keys = [key async for key in redis.scan_iter(match=keys.stream_pattern, count=1000)]
        node_keys = [key async for key in redis.scan_iter(match=keys.node_pattern, count=1000)]
        pipe = redis.pipeline(transaction=False)
        pipe.mget(stream_keys or ["-"])
        pipe.mget(node_keys or ["-"])
        stream_values, node_values = await pipe.execute()
        now = self.clock()
        nodes = {}
        for value in node_values if node_keys else ():
            info = _loads(value)
            if info is not None and isinstance(info.get("node"), str):
                nodes[info["node"]] = info
        directory = {}
        for key, value in zip(stream_keys, stream_values if stream_keys else ()):
            info = _loads(value)
            if info is None or info.get("node") == self.node_id or info.get("node") not in nodes:
                continue  # ours, gone, or of a node that is no longer alive
            name = keys.stream_name(key)
            directory[name] = DirectoryEntry(name, str(info["node"]), str(info.get("url", "")),
                                             float(info.get("started_at") or 0.0), now)
        others = [node for node in nodes if node != self.node_id]
        pipe = redis.pipeline(transaction=False)
        for node in others:
            pipe.hgetall(keys.viewers(node))
        totals: dict[str, int] = {}
        for counts in (await pipe.execute() if others else ()):
            for name, count in counts.items():
                try:
                    totals[name] = totals.get(name, 0) + int(count)
                except ValueError:
                    continue
        # Directory events that came while this read was under way are newer than it.
        for name, entry in self.directory.items():
            if name not in directory and entry.seen >= read_started:
                directory[name] = entry
        for name, ended_at in list(self._ended.items()):
            if ended_at >= read_started:
                directory.pop(name, None)
            else:
                del self._ended[name]
        self.nodes = nodes
        self.directory = directory
        self.remote_viewers = totals
        self.heartbeats += 1
        took = self.clock() - began
        self.slowest_beat = max(self.slowest_beat, took)
        if took > self.config.directory_ttl / 2:
            log.warning("cluster: a heartbeat took %.1f s, close to cluster.directory_ttl (%g s): this node's "
                        "streams may leave the directory; raise it or relieve the node", took,
                        self.config.directory_ttl)

    # --- sending ------------------------------------------------------------------------

    def stream_started(self, name: str, started_at: float) -> None:
        """This node became the origin of ``name``: into the directory now, and tell the
        others (they need not wait for their next heartbeat)."""
        entry = DirectoryEntry(name, self.node_id, self.url, started_at)
        self._announced.add(name)
        self._put(("set", self.keys.stream(name), entry.to_json()))
        self.publish(self.keys.directory, {"event": "started", "stream": name, "url": self.url,
                                           "started_at": started_at})

    def stream_ended(self, name: str) -> None:
        """The stream this node ingested ended: out of the directory (if still ours)."""
        self._announced.discard(name)
        self._put(("delete_if_owner", self.keys.stream(name)))
        self.publish(self.keys.directory, {"event": "ended", "stream": name})

    def publish_chat(self, room: str, frame: dict) -> None:
        """A chat frame of ``room`` for the members of that room on the other nodes."""
        self.publish(self.keys.chat(room), {"frame": frame})

    def publish_alert(self, message: dict) -> None:
        self.publish(self.keys.alerts, message)

    def publish(self, channel: str, message: dict) -> None:
        """Publish ``message`` (plus this node's id) on ``channel``, after everything
        queued before it. Never blocks: when Redis is away and the queue is full, dropped."""
        text = json.dumps({"node": self.node_id, **message}, separators=(",", ":"))
        self._put(("publish", channel, text))

    def _put(self, item: tuple) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def _drain_queue(self) -> list[tuple]:
        items = []
        while not self._queue.empty() and len(items) < BATCH:
            items.append(self._queue.get_nowait())
        return items

    async def _send(self, items: list[tuple]) -> None:
        if not items:
            return
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            if item[0] == "publish":
                pipe.publish(item[1], item[2])
            elif item[0] == "set":
                pipe.set(item[1], item[2], px=self.ttl_ms)
            else:
                pipe.eval(_DELETE_IF_OWNER, 1, item[1], self.node_id)
        await pipe.execute()
        self.sent += len(items)

    async def _sender_loop(self) -> None:
        while True:
            first = await self._queue.get()
            items = [first, *self._drain_queue()]
            try:
                await self._send(items)
            except Exception as exc:
                self.dropped += len(items)
                log.warning("cluster: %d message(s) to Redis lost (%s)", len(items), _describe(exc))
                await asyncio.sleep(RETRY)

    # --- receiving ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.config.heartbeat)  # the heartbeat period, not synchronisation
            try:
                await self.beat()
                if failing:
                    log.info("cluster: Redis is reachable again")
                failing = False
            except Exception as exc:
                self.heartbeat_failures += 1
                if not failing:
                    log.warning("cluster: heartbeat failed (%s); retrying", _describe(exc))
                failing = True

    async def _subscriber_loop(self) -> None:
        keys = self.keys
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(keys.chat_pattern)
                await pubsub.subscribe(keys.alerts, keys.directory)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("cluster: subscription to Redis lost (%s); resubscribing", _describe(exc))
                await asyncio.sleep(RETRY)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    def _dispatch(self, message: dict) -> None:
        data = _loads(message.get("data"))
        if data is None or data.get("node") == self.node_id:
            return  # not ours to read, or our own message coming back
        self.received += 1
        channel = message.get("channel") or ""
        try:
            if channel == self.keys.directory:
                self._directory_event(data)
            elif channel == self.keys.alerts:
                if self.on_alert is not None:
                    self.on_alert(data)
            elif message.get("type") == "pmessage" and isinstance(data.get("frame"), dict):
                if self.on_chat is not None:
                    self.on_chat(self.keys.chat_room(channel), data["frame"])
        except Exception:
            log.exception("cluster: handling a message on %s failed", channel)

    def _directory_event(self, data: dict) -> None:
        name = data.get("stream")
        if not isinstance(name, str):
            return
        if data.get("event") == "started":
            self._ended.pop(name, None)
            self.directory[name] = DirectoryEntry(name, str(data["node"]), str(data.get("url", "")),
                                                  float(data.get("started_at") or 0.0), self.clock())
        elif data.get("event") == "ended":
            entry = self.directory.get(name)
            if entry is not None and entry.node == data["node"]:
                del self.directory[name]
                self._ended[name] = self.clock()


def _loads(value) -> dict | None:
    if not isinstance(value, (str, bytes)):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
