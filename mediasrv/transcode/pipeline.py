"""Decode once, encode every rung in its own thread (runs inside the worker process).

Threads (PyAV releases the GIL in decode, scale and encode, so they run in parallel):

- the caller's thread ``submit()``s input messages: video goes to a queue bounded in
  seconds (live: past ``2 * max_queue_seconds`` of media it drops up to the next
  keyframe; not live: it blocks), audio to the audio thread;
- the **decode thread** decodes the source, marks each frame's picture type (I on the
  frames the server flagged for aligned keyframes, NONE on every other frame, so the
  source's own keyframes never leak into the rungs), consults the :class:`LoadGovernor`
  and hands the frame to the rung threads;
- one **rung thread** per rung owns its x264 context and its own ``VideoReformatter``:
  frame-rate cap, scale, encode, Annex B → length-prefixed, emit;
- the **audio thread** decodes the source AAC and encodes it once (AAC at
  ``audio_bitrate``) for all rungs.

Every rung that scales reformats the same decoded frame, concurrently. PyAV's
``reformat`` briefly rewrites the source frame's colour tags around ``sws_scale_frame``
and restores them; all rungs ask for the same conversion, so the values they write are
the same and the overlap is harmless. A rung of the source's size and pixel format
skips the reformatter and encodes the decoded frame itself.

Output goes through ``send(header, data)`` (thread-safe; framed ``protocol`` messages).
Counters are plain ints and floats; ``stats()`` returns them as a dict.
"""

from __future__ import annotations

import collections
import fractions
import queue
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import av
from av.audio.resampler import AudioResampler
from av.codec.context import Flags
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from mediasrv.media import aac, avc
from mediasrv.transcode import protocol
from mediasrv.transcode.governor import LoadGovernor, Step
from mediasrv.transcode.ladder import FrameRateCap, RungPlan, plan_ladder, shed_order
from mediasrv.transcode.protocol import AUDIO_INDEX, AudioIn, MessageType, VideoIn

MS = fractions.Fraction(1, 1000)
DECODERS = {"h264": "h264", "hevc": "hevc", "av1": "libdav1d", "vp9": "vp9"}
#: Decoded frames queued per rung (the decode thread waits when the slowest rung's is full).
RUNG_QUEUE_FRAMES = 12
#: Scaling algorithm of every rung (the FFmpeg CLI's default for ``scale``).
INTERPOLATION = Interpolation.BICUBIC
#: x264 settings shared by every rung: no scene-cut or periodic keyframes (only the
#: forced ones), closed GOPs, IDR on forced frames, rate control on real timestamps.
X264_PARAMS = "scenecut=0:open-gop=0:keyint=infinite:min-keyint=1:force-cfr=0"
#: Pixels per x264 thread: 720p gets a second (sliced, as zerolatency wants) thread, so
#: the tallest rung, which the decode thread waits for, is not the one a whole ladder
#: waits on; smaller rungs get one (the rungs themselves are the parallelism).
PIXELS_PER_THREAD = 600_000


class PipelineError(Exception):
    """A failure that needs a restart of the worker (the server does it)."""


@dataclass(slots=True)
class RungCounters:
    index: int
    name: str
    width: int
    height: int
    enabled: bool = True
    frames_in: int = 0
    frames_encoded: int = 0
    #: Frames not encoded because of overload (rung shed, decimation, waiting for an
    #: aligned keyframe after a gap).
    frames_dropped: int = 0
    #: Frames left out by the rung's ``max_fps`` cap (by design, not a loss).
    frames_capped: int = 0
    packets: int = 0
    keyframes: int = 0
    bytes_out: int = 0
    #: Wall seconds inside scale + encode, and the media seconds they produced.
    busy_seconds: float = 0.0
    media_seconds: float = 0.0
    #: CPU seconds of the rung's thread (scale + encode + packaging).
    cpu_seconds: float = 0.0
    encoder_opens: int = 0

    @property
    def speed(self) -> float:
        """Encode speed in × real time (media seconds per busy second)."""
        return self.media_seconds / self.busy_seconds if self.busy_seconds > 0 else 0.0


@dataclass(slots=True)
class PipelineCounters:
    video_in: int = 0
    audio_in: int = 0
    #: Source packets dropped before decoding (queue over its hard bound, up to a keyframe).
    input_dropped: int = 0
    input_skips: int = 0
    frames_decoded: int = 0
    decode_errors: int = 0
    decode_seconds: float = 0.0
    decode_cpu_seconds: float = 0.0
    #: Seconds the last packet waited in the input queue, and the most any did.
    queue_delay: float = 0.0
    queue_delay_max: float = 0.0
    #: Media seconds queued right now.
    queue_seconds: float = 0.0
    degrade_level: int = 0
    sheds: int = 0
    restores: int = 0
    audio_frames_out: int = 0
    audio_errors: int = 0
    replans: int = 0
    rungs: dict[int, RungCounters] = field(default_factory=dict)


_END = object()
_GAP = object()


class _InputQueue:
    """Source video packets (and track changes) waiting for the decode thread.

    Items are ``(item, enqueued_at)``. Live, the queue never holds more than
    ``2 * max_seconds`` of media: past that, queued video is dropped up to the newest
    keyframe (or all of it, and input waits for the next keyframe) and a gap marker tells
    the rungs to resume at their next aligned keyframe. Not live, ``put`` waits instead.
    """

    def __init__(self, max_seconds: float, live: bool, counters: PipelineCounters) -> None:
        self.max_ms = max(200, int(max_seconds * 1000))
        self.live = live
        self.counters = counters
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._awaiting_keyframe = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def _oldest_dts(self) -> int | None:
        for item, _ in self._items:
            if isinstance(item, VideoIn):
                return item.dts
        return None

    def _newest_dts(self) -> int | None:
        for item, _ in reversed(self._items):
            if isinstance(item, VideoIn):
                return item.dts
        return None

    def put(self, item) -> None:
        with self._cond:
            if isinstance(item, VideoIn):
                if self._awaiting_keyframe:
                    if not item.keyframe:
                        self.counters.input_dropped += 1
                        return
                    self._awaiting_keyframe = False
                    self._items.append((_GAP, 0.0))
                oldest = self._oldest_dts()
                if self.live:
                    if oldest is not None and item.dts - oldest >= 2 * self.max_ms:
                        self._skip(item)
                        if self._awaiting_keyframe:
                            return
                else:
                    while not self._closed and oldest is not None and item.dts - oldest >= self.max_ms:
                        self._cond.wait(0.5)
                        oldest = self._oldest_dts()
            self._items.append((item, time.monotonic()))
            self._cond.notify_all()

    def _skip(self, incoming: VideoIn) -> None:
        """Over the hard bound: drop queued video before the newest keyframe (the incoming
        packet counts); with none, drop it all and wait for the next keyframe. Track
        changes are kept."""
        self.counters.input_skips += 1
        items = list(self._items)
        cut = len(items)
        if not incoming.keyframe:
            cut = next((i for i in range(len(items) - 1, -1, -1)
                        if isinstance(items[i][0], VideoIn) and items[i][0].keyframe), -1)
        kept = collections.deque()
        for i, entry in enumerate(items):
            head = entry[0]
            if cut >= 0 and i >= cut:
                if i == cut:
                    kept.append((_GAP, 0.0))
                kept.append(entry)
            elif isinstance(head, VideoIn):
                self.counters.input_dropped += 1
            elif head is not _GAP:
                kept.append(entry)
        if cut == len(items):
            kept.append((_GAP, 0.0))
        if cut < 0:
            self.counters.input_dropped += 1  # the incoming packet, not a keyframe
            self._awaiting_keyframe = True
        self._items = kept

    def get(self):
        with self._cond:
            while not self._items:
                self._cond.wait()
            item = self._items.popleft()
            self._cond.notify_all()
            oldest, newest = self._oldest_dts(), self._newest_dts()
            self.counters.queue_seconds = 0.0 if oldest is None else (newest - oldest) / 1000
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Rung:
    """One rung: its thread, queue, x264 context and reformatter."""

    def __init__(self, plan: RungPlan, pipeline: "Pipeline") -> None:
        self.plan = plan
        self.pipeline = pipeline
        self.counters = pipeline.counters.rungs.setdefault(
            plan.index, RungCounters(plan.index, plan.name, plan.width, plan.height))
        self.counters.width, self.counters.height = plan.width, plan.height
        self.queue: queue.Queue = queue.Queue(RUNG_QUEUE_FRAMES)
        self.thread = threading.Thread(target=self._run, name=f"rung-{plan.name}", daemon=True)
        self.encoder = None
        self.reformatter = VideoReformatter()
        self.cap = FrameRateCap(plan.max_fps)
        self.waiting_keyframe = True
        self.discontinuity = False
        self.last_pts: int | None = None
        self.skip_toggle = False
        self.announced = False
        self.progress_at = time.monotonic()
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread.start()

    def put(self, item) -> None:
        while True:
            try:
                self.queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if not self.thread.is_alive():
                    raise PipelineError(f"rung {self.plan.name} stopped: {self.error!r}")

    # --- thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                self.progress_at = time.monotonic()
                if item is _END:
                    self._flush()
                    return
                if item is _GAP:
                    self._gap()
                    continue
                frame, pts, forced, decimate = item
                cpu = time.thread_time()
                self._frame(frame, pts, forced, decimate)
                self.counters.cpu_seconds += time.thread_time() - cpu
        except BaseException as exc:  # reported by the pipeline's watchdog
            self.error = exc
            self.pipeline._fail(f"rung {self.plan.name}: {exc!r}")

    def _gap(self) -> None:
        """Frames were lost before the next one: resume at the next aligned keyframe."""
        if not self.waiting_keyframe:
            self.waiting_keyframe = True
            self.discontinuity = self.announced

    def _frame(self, frame, pts: int, forced: bool, decimate: bool) -> None:
        c = self.counters
        c.frames_in += 1
        if self.waiting_keyframe and not forced:
            c.frames_dropped += 1
            return
        if self.last_pts is not None and pts <= self.last_pts:
            c.frames_dropped += 1  # not after the last encoded frame: x264 needs increasing pts
            return
        if not self.cap.keep(pts, forced):
            c.frames_capped += 1
            return
        if decimate and not forced:
            self.skip_toggle = not self.skip_toggle
            if self.skip_toggle:
                c.frames_dropped += 1
                return
        started = time.perf_counter()
        if self.encoder is None:
            self._open(frame)
        packets = self.encoder.encode(self._scaled(frame, pts))
        c.busy_seconds += time.perf_counter() - started
        self.waiting_keyframe = False
        last = self.last_pts
        step = pts - last if last is not None and pts - last < 1000 else self.pipeline.frame_interval_ms
        c.media_seconds += step / 1000
        self.last_pts = pts
        c.frames_encoded += 1
        self._emit(packets)

    def _scaled(self, frame, pts: int):
        """The frame this rung encodes: the decoded frame itself when it already has the
        rung's size and pixel format (the 720p rung of a 720p source: no reformat call, no
        copy; x264 copies its input, so sharing the frame with the other rungs is safe),
        else a new frame scaled by the rung's own reformatter."""
        plan = self.plan
        if frame.width == plan.width and frame.height == plan.height and frame.format.name == "yuv420p":
            return frame
        scaled = self.reformatter.reformat(
            frame, plan.width, plan.height, "yuv420p", interpolation=INTERPOLATION, threads=1,
        )
        if scaled is not frame:  # (never the shared frame: its timestamps are the decoder's)
            scaled.pts = pts
            scaled.time_base = MS
        return scaled

    def _open(self, frame) -> None:
        plan = self.plan
        fps = min(plan.max_fps, self.pipeline.fps_estimate or plan.max_fps)
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = plan.width, plan.height, "yuv420p"
        enc.time_base = MS
        enc.framerate = fractions.Fraction(fps).limit_denominator(1001)
        enc.sample_aspect_ratio = fractions.Fraction(1, 1)
        enc.bit_rate = plan.video_bitrate
        enc.flags |= Flags.global_header
        enc.thread_count = max(1, min(4, -(-plan.pixels // PIXELS_PER_THREAD)))
        enc.options = {
            "preset": plan.preset,
            "tune": "zerolatency",
            "maxrate": str(plan.maxrate),
            "bufsize": str(plan.bufsize),
            "forced-idr": "1",
            "x264-params": X264_PARAMS,
        }
        enc.open()
        self.encoder = enc
        self.counters.encoder_opens += 1
        self._announce()

    def _announce(self) -> None:
        config = avc.avcc_from_annexb_header(bytes(self.encoder.extradata or b""))
        if config is None:
            raise PipelineError("x264 gave no SPS/PPS in its global header")
        plan = self.plan
        self.pipeline._send_json(MessageType.RUNG, {
            "index": plan.index, "name": plan.name, "codec": "h264",
            "config": protocol.b64(config), "width": plan.width, "height": plan.height,
        })
        self.announced = True

    def _emit(self, packets) -> None:
        c = self.counters
        for packet in packets:
            data = avc.annexb_to_length_prefixed(bytes(packet), 4)
            if not data:
                continue
            keyframe = bool(packet.is_keyframe)
            dts = packet.dts if packet.dts is not None else packet.pts
            discontinuity = self.discontinuity and keyframe
            if discontinuity:
                self.discontinuity = False
            self.pipeline._send(protocol.packet_header(
                self.plan.index, dts, packet.pts, keyframe=keyframe, discontinuity=discontinuity, size=len(data)), data)
            c.packets += 1
            c.bytes_out += len(data)
            c.keyframes += keyframe

    def _flush(self) -> None:
        if self.encoder is not None:
            self._emit(self.encoder.encode(None))


class Pipeline:
    """The transcoder of one stream. ``config`` is the worker's CONFIG message."""

    def __init__(self, config: dict, send: Callable[[bytes, bytes], None]) -> None:
        self.config = config
        self.rung_settings = [_Settings(**r) for r in config.get("rungs", [])]
        self.audio_bitrate = int(config.get("audio_bitrate", 128_000))
        self.live = bool(config.get("live", True))
        self.max_queue_seconds = float(config.get("max_queue_seconds", 2.0))
        self._send_raw = send
        self.counters = PipelineCounters()
        self.governor = LoadGovernor([], self.max_queue_seconds,
                                     recover_after=float(config.get("recover_after", 10.0)))
        self._input = _InputQueue(self.max_queue_seconds, self.live, self.counters)
        self._audio: queue.Queue = queue.Queue(512)
        self._rungs: dict[int, _Rung] = {}
        self._source_key: tuple | None = None
        self._decoder = None
        self._video_track: dict | None = None
        self._force_pts: dict[int, bool] = {}
        self._gap_pending = False
        self.fps_estimate: float = 0.0
        self.frame_interval_ms: float = 1000 / 30
        self._last_frame_pts: int | None = None
        self._speed_marks: dict[int, tuple[float, float, float]] = {}
        self._decode_thread = threading.Thread(target=self._decode_loop, name="decode", daemon=True)
        self._audio_thread = threading.Thread(target=self._audio_loop, name="audio", daemon=True)
        self.decode_progress_at = time.monotonic()
        self.done = threading.Event()
        #: Set when every thread flushed (``done``) or one of them failed: what ``finish`` awaits.
        self._over = threading.Event()
        self.failure: str | None = None
        self._fail_lock = threading.Lock()
        self._on_failure: Callable[[str], None] | None = None

    # --- input (caller's thread) -----------------------------------------------------------

    def start(self, on_failure: Callable[[str], None]) -> None:
        self._on_failure = on_failure
        self._decode_thread.start()
        self._audio_thread.start()

    def submit(self, kind: MessageType, value) -> None:
        if kind is MessageType.VIDEO:
            self.counters.video_in += 1
            self._input.put(value)
        elif kind is MessageType.AUDIO:
            self.counters.audio_in += 1
            try:
                self._audio.put(("audio", value), block=not self.live, timeout=None if self.live else 30)
            except queue.Full:
                self.counters.audio_errors += 1
        elif kind is MessageType.VIDEO_TRACK:
            self._input.put(("track", value))
        elif kind is MessageType.AUDIO_TRACK:
            self._audio.put(("track", value))
        elif kind is MessageType.END:
            self._input.put(("end", None))

    def finish(self, timeout: float) -> bool:
        """After END was submitted: wait until every thread flushed (True), a thread failed
        or ``timeout`` passed (False; ``failure`` says which)."""
        self._over.wait(timeout)
        return self.done.is_set()

    def stats(self) -> dict:
        c = self.counters
        out = {f.name: getattr(c, f.name) for f in fields(c) if f.name != "rungs"}
        out["rungs"] = {str(k): {**asdict(r), "speed": round(self._recent_speed(r), 3),
                                 "average_speed": round(r.speed, 3)} for k, r in list(c.rungs.items())}
        out["fps_estimate"] = round(self.fps_estimate, 3)
        out["process_cpu_seconds"] = round(time.process_time(), 3)
        out["disabled"] = sorted(self.governor.disabled)
        out["decimate"] = self.governor.decimate
        return out

    def _recent_speed(self, rung: RungCounters) -> float:
        """Encode speed over the time since the last call (smoothed); the last value while
        the rung encodes nothing (shed)."""
        previous = self._speed_marks.get(rung.index)
        self._speed_marks[rung.index] = (rung.media_seconds, rung.busy_seconds, previous[2] if previous else 0.0)
        if previous is None:
            speed = rung.speed
        else:
            media, busy = rung.media_seconds - previous[0], rung.busy_seconds - previous[1]
            if busy <= 0 or media <= 0:
                return previous[2]
            speed = media / busy if not previous[2] else 0.5 * previous[2] + 0.5 * media / busy
        self._speed_marks[rung.index] = (rung.media_seconds, rung.busy_seconds, speed)
        return speed

    def stalled(self, now: float, limit: float) -> str | None:
        """A description of a thread that had work and made no progress for ``limit`` s."""
        if len(self._input) and now - self.decode_progress_at > limit:
            return "the decode thread"
        for rung in list(self._rungs.values()):
            if not rung.queue.empty() and now - rung.progress_at > limit:
                return f"rung {rung.plan.name}"
        return None

    # --- output ----------------------------------------------------------------------------

    def _send(self, header: bytes, data: bytes = b"") -> None:
        self._send_raw(header, data)

    def _send_json(self, kind: MessageType, value: dict) -> None:
        self._send_raw(protocol.json_message(kind, value), b"")

    def _event(self, level: str, message: str) -> None:
        self._send_json(MessageType.EVENT, {"level": level, "message": message})

    def _fail(self, reason: str) -> None:
        with self._fail_lock:
            if self.failure is not None:
                return
            self.failure = reason
        # A caller blocked on a full input queue (not live: it waits for room) would wait
        # for a decode thread that is gone: let it through; nothing reads the queue now.
        self._input.close()
        self._over.set()
        if self._on_failure is not None:
            self._on_failure(reason)

    # --- decode thread ---------------------------------------------------------------------

    def _decode_loop(self) -> None:
        try:
            while True:
                item, enqueued = self._input.get()
                self.decode_progress_at = time.monotonic()
                if item is _GAP:
                    self._gap_pending = True
                    continue
                if isinstance(item, VideoIn):
                    self._video(item, enqueued)
                    continue
                kind, value = item
                if kind == "track":
                    self._new_track(value)
                elif kind == "end":
                    self._drain_decoder()
                    for rung in self._rungs.values():
                        rung.put(_END)
                    for rung in self._rungs.values():
                        rung.thread.join()
                    self._audio.put(("end", None))
                    self._audio_thread.join()
                    self.done.set()
                    self._over.set()
                    return
        except BaseException as exc:
            self._fail(f"decode: {exc!r}")

    def _new_track(self, track: dict) -> None:
        if self._decoder is not None:
            self._drain_decoder()
        self._video_track = track
        codec = track.get("codec")
        name = DECODERS.get(codec)
        if name is None:
            raise PipelineError(f"cannot decode {codec!r} video")
        decoder = av.CodecContext.create(name, "r")
        config = protocol.unb64(track.get("config", ""))
        if config and codec != "vp9":
            decoder.extradata = config
        # One thread: decoding is a small share of the work (the rungs run beside it), and
        # frame threads would add a frame of delay per thread.
        decoder.thread_type = "SLICE"
        decoder.thread_count = 1
        self._decoder = decoder
        fps = float(track.get("fps") or 0)
        if fps > 0 and not self.fps_estimate:
            self.fps_estimate = fps
            self.frame_interval_ms = 1000 / fps
        self._gap_pending = True

    def _video(self, unit: VideoIn, enqueued: float) -> None:
        now = time.monotonic()
        delay = now - enqueued
        c = self.counters
        c.queue_delay = delay
        c.queue_delay_max = max(c.queue_delay_max, delay)
        if self.live:
            step = self.governor.observe(delay, now)
            if step is not None:
                self._apply(step)
        if self._decoder is None:
            return
        if unit.discontinuity:
            self._gap_pending = True
        if unit.force_keyframe:
            self._force_pts[unit.pts] = True
        packet = av.Packet(unit.data)
        packet.pts, packet.dts, packet.time_base = unit.pts, unit.dts, MS
        packet.is_keyframe = unit.keyframe
        started = time.perf_counter()
        cpu = time.thread_time()
        try:
            frames = self._decoder.decode(packet)
        except av.error.FFmpegError as exc:
            c.decode_errors += 1
            if c.decode_errors <= 3:
                self._event("warning", f"decode error: {exc}")
            return
        finally:
            c.decode_seconds += time.perf_counter() - started
            c.decode_cpu_seconds += time.thread_time() - cpu
        for frame in frames:
            self._dispatch(frame)
        if len(self._force_pts) > 256:  # frames that never came out (decode errors)
            for pts in sorted(self._force_pts)[:-64]:
                del self._force_pts[pts]

    def _drain_decoder(self) -> None:
        if self._decoder is None:
            return
        try:
            frames = self._decoder.decode(None)
        except av.error.FFmpegError:
            frames = []
        for frame in frames:
            self._dispatch(frame)
        self._decoder = None

    def _apply(self, step: Step) -> None:
        c = self.counters
        c.degrade_level = step.level
        c.sheds, c.restores = self.governor.sheds, self.governor.restores
        names = {r.plan.index: r.plan.name for r in self._rungs.values()}
        what = {
            "shed": f"dropping rung {names.get(step.index, step.index)}",
            "restore": f"restoring rung {names.get(step.index, step.index)}",
            "decimate": "encoding every other frame",
            "undecimate": "encoding every frame again",
        }[step.action]
        verb = "behind" if step.action in ("shed", "decimate") else "caught up"
        self._event("warning" if verb == "behind" else "info",
                    f"{verb} (input waited {step.delay:.2f} s, level {step.level}): {what}")
        for rung in self._rungs.values():
            enabled = rung.plan.index not in self.governor.disabled
            if enabled and not rung.counters.enabled:
                rung.put(_GAP)  # it missed frames: restart at the next aligned keyframe
            rung.counters.enabled = enabled

    def _dispatch(self, frame) -> None:
        c = self.counters
        c.frames_decoded += 1
        pts = frame.pts
        if pts is None:
            return
        last = self._last_frame_pts
        if last is not None and 0 < pts - last < 1000:
            interval = pts - last
            self.frame_interval_ms += (interval - self.frame_interval_ms) * 0.1
            self.fps_estimate = 1000 / self.frame_interval_ms
        self._last_frame_pts = pts
        forced = self._force_pts.pop(pts, False)
        self._ensure_ladder(frame)
        frame.pict_type = PictureType.I if forced else PictureType.NONE
        gap = self._gap_pending
        self._gap_pending = False
        decimate = self.governor.decimate
        disabled = self.governor.disabled
        for rung in self._rungs.values():
            if gap:
                rung.put(_GAP)
            if rung.plan.index in disabled:
                rung.counters.frames_in += 1
                rung.counters.frames_dropped += 1
                continue
            rung.put((frame, pts, forced, decimate))

    def _ensure_ladder(self, frame) -> None:
        sar = self._decoder.sample_aspect_ratio if self._decoder is not None else None
        sar_pair = (sar.numerator, sar.denominator) if sar else (1, 1)
        key = (frame.width, frame.height, sar_pair)
        if key == self._source_key:
            return
        first = self._source_key is None
        self._source_key = key
        plans = plan_ladder(frame.width, frame.height, self.rung_settings, sar=sar_pair)
        old = self._rungs
        if old:
            self.counters.replans += 1
            for rung in old.values():
                rung.put(_END)
            for rung in old.values():
                rung.thread.join()
        self._rungs = {p.index: _Rung(p, self) for p in plans}
        for rung in self._rungs.values():
            rung.start()
        self.governor.set_order(shed_order(plans, self.fps_estimate or 30.0))
        self.counters.degrade_level = 0
        if not plans:
            self._event("warning", f"source {frame.width}x{frame.height}: no rung fits under it")
        elif not first:
            self._event("info", f"source is now {frame.width}x{frame.height}: "
                                f"rungs {', '.join(f'{p.name} {p.width}x{p.height}' for p in plans)}")

    # --- audio thread ----------------------------------------------------------------------

    def _audio_loop(self) -> None:
        try:
            _AudioTranscoder(self).run()
        except BaseException as exc:
            self._fail(f"audio: {exc!r}")


@dataclass(frozen=True, slots=True)
class _Settings:
    name: str
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int
    max_fps: float
    preset: str


class _AudioTranscoder:
    """Source AAC → decoded → AAC at ``audio_bitrate`` (encoded once for all rungs)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.decoder = None
        self.encoder = None
        self.resampler = None
        self.rate = 0
        self.layout = ""
        self.next_sample: int | None = None
        self.first_sample: int | None = None

    def run(self) -> None:
        q = self.pipeline._audio
        while True:
            kind, value = q.get()
            if kind == "end":
                self._flush_encoder()
                return
            if kind == "track":
                self._track(value)
            elif kind == "audio" and self.decoder is not None:
                self._unit(value)

    def _track(self, track: dict) -> None:
        if track.get("codec") != "aac":
            self.decoder = None
            return
        decoder = av.CodecContext.create("aac", "r")
        config = protocol.unb64(track.get("config", ""))
        if config:
            decoder.extradata = config
        self.decoder = decoder

    def _unit(self, unit: AudioIn) -> None:
        packet = av.Packet(unit.data)
        packet.pts, packet.dts, packet.time_base = unit.pts, unit.dts, MS
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            self.pipeline.counters.audio_errors += 1
            return
        for frame in frames:
            self._frame(frame, unit.pts)

    def _frame(self, frame, fallback_pts: int) -> None:
        rate = frame.sample_rate
        layout = "mono" if frame.layout.nb_channels == 1 else "stereo"
        if rate != self.rate or layout != self.layout:
            self._flush_encoder()
            self._open(rate, layout)
        pts_ms = frame.pts if frame.pts is not None else fallback_pts
        sample = round(pts_ms * rate / 1000)
        expected = self.next_sample
        if expected is None or abs(sample - expected) > rate // 20:
            expected = sample  # start, or a jump of more than 50 ms: follow the source
        if self.first_sample is None:
            self.first_sample = expected
        frame.pts = expected
        frame.time_base = fractions.Fraction(1, rate)
        self.next_sample = expected + frame.samples
        for out in self.resampler.resample(frame):
            self._encode(out)

    def _open(self, rate: int, layout: str) -> None:
        encoder = av.CodecContext.create("aac", "w")
        encoder.sample_rate = rate
        encoder.layout = layout
        encoder.format = "fltp"
        encoder.bit_rate = self.pipeline.audio_bitrate
        encoder.time_base = fractions.Fraction(1, rate)
        encoder.open()
        self.encoder = encoder
        self.resampler = AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=encoder.frame_size or 1024)
        self.rate, self.layout = rate, layout
        self.next_sample = None
        self.first_sample = None
        config = bytes(encoder.extradata or b"")
        if not config:
            config = aac.build_asc(2, rate, 1 if layout == "mono" else 2)
        self.pipeline._send_json(MessageType.RUNG, {
            "index": AUDIO_INDEX, "name": "audio", "codec": "aac", "config": protocol.b64(config),
            "sample_rate": rate, "channels": 1 if layout == "mono" else 2,
        })

    def _encode(self, frame) -> None:
        self._emit(self.encoder.encode(frame))

    def _flush_encoder(self) -> None:
        if self.encoder is None:
            return
        try:
            for out in self.resampler.resample(None):
                self._encode(out)
        except (ValueError, av.error.FFmpegError):
            pass
        self._emit(self.encoder.encode(None))
        self.encoder = None

    def _emit(self, packets) -> None:
        rate = self.rate
        for packet in packets:
            if packet.pts is None or (self.first_sample is not None and packet.pts < self.first_sample):
                continue  # the encoder's priming frame, before the source's first sample
            pts = round(packet.pts * 1000 / rate)
            data = bytes(packet)
            self.pipeline._send(protocol.packet_header(AUDIO_INDEX, pts, pts, keyframe=True, discontinuity=False,
                                                       size=len(data)), data)
            self.pipeline.counters.audio_frames_out += 1
